"""`explainrec evaluate-explanations` on a real toy bundle, and bundle-built evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.bundle import Bundle
from embeddings.inference import UserEncoder
from explainrec.cli import main
from explainrec.commands.evaluate_explanations import BundleEvidence, leave_one_out_effects, user_profile
from tests.support.toy_shop import make_toy_bundle

KEYS = {
    "explainer",
    "n",
    "grounded_rate",
    "llm_pass_rate",
    "hallucinated_entity_rate",
    "necessity",
    "p50_ms",
    "p95_ms",
    "cached_p50_ms",
}


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundles")
    make_toy_bundle(root)
    return root


def test_template_evaluation_writes_the_issue_json(toy_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    code = main(
        ["evaluate-explanations", "--bundle", str(toy_root), "--users", "6", "--explainer", "template",
         "--k", "5", "--json", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) == KEYS
    assert result["explainer"] == "template" and result["n"] == 30
    assert result["grounded_rate"] == 1.0 and result["hallucinated_entity_rate"] == 0.0
    assert result["llm_pass_rate"] is None
    assert 0.0 <= result["necessity"] <= 1.0
    assert result["cached_p50_ms"] < 5.0


def test_missing_bundle_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate-explanations", "--bundle", str(tmp_path / "nope"), "--users", "2"])
    assert code == 2
    assert "error:" in capsys.readouterr().err


def test_bundle_evidence_cites_the_item_whose_removal_hurts_most(toy_root: Path) -> None:
    """Planted: the cited history item is the one whose leave-one-out fold-in lowers the score most."""
    bundle = Bundle.load(toy_root)
    source = BundleEvidence(bundle)
    encoder = UserEncoder(bundle)
    user_id = sorted(bundle.history)[0]
    history = [int(i) for i in bundle.history[user_id]]
    profile = user_profile(bundle, user_id)
    vector = encoder.encode(profile, [source.item_ids[i] for i in history], user_id)
    top, _ = bundle.retriever.search(vector, 3, exclude=history)
    effects = leave_one_out_effects(encoder, profile, history, user_id, vector, source.vectors[top])
    for j, item in enumerate(top):
        ev = source.evidence(user_id, int(item), history, vector, effects=effects[:, j])
        if not ev.history_items:
            continue
        strongest = history[int(effects[:, j].argmax())]
        assert ev.history_items[0].item_id == source.item_ids[strongest]
        # The measured effect is real: folding in without that item lowers the item's score.
        without = [source.item_ids[i] for i in history if i != strongest]
        lowered = encoder.encode(profile, without, user_id) @ source.vectors[int(item)]
        assert lowered < vector @ source.vectors[int(item)]
        assert ev.segment is None or ev.segment.segment_size > 0
