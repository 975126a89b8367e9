"""`explainrec evaluate-explanations` on a real toy bundle, and bundle-built evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.evidence import removal_encoder
from backend.recommender import Recommender, RecQuery, Shopper, with_session
from embeddings.bundle import Bundle
from explain.template import TemplateExplainer
from explainrec.cli import main
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
    assert set(result) == KEYS | {"environment"}
    assert result["environment"]["python"]
    assert result["explainer"] == "template" and result["n"] == 30
    assert result["grounded_rate"] == 1.0 and result["hallucinated_entity_rate"] == 0.0
    assert result["llm_pass_rate"] is None
    assert 0.0 <= result["necessity"] <= 1.0
    assert result["cached_p50_ms"] < 5.0


def test_missing_bundle_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate-explanations", "--bundle", str(tmp_path / "nope"), "--users", "2"])
    assert code == 2
    assert "error:" in capsys.readouterr().err


def test_served_evidence_is_the_evaluated_evidence(toy_root: Path) -> None:
    """`Recommender.evidences` (what the evaluation measures) equals what `recommend` serves."""
    bundle = Bundle.load(toy_root)
    recommender = Recommender(bundle, TemplateExplainer())
    shopper, query = Shopper("u00"), RecQuery(k=5, explain=True)
    served = recommender.recommend(shopper, query).items
    evaluated = recommender.evidences(shopper, query, served)
    assert [s.explanation.evidence for s in served if s.explanation] == [e.to_dict() for e in evaluated]


def test_cited_history_is_necessary_on_a_real_bundle(toy_root: Path) -> None:
    """Every cited set, removed, drops its item out of the top-k; without its last member it does not."""
    bundle = Bundle.load(toy_root)
    recommender = Recommender(bundle, TemplateExplainer())
    item_ids = bundle.feature_spec.item_ids
    checked = 0
    for user_id in sorted(bundle.history):
        shopper, query = Shopper(user_id), RecQuery(k=5)
        served = recommender.recommend(shopper, query).items
        remove = recommender.removal_encoder(shopper)
        assert remove is not None
        history = [int(i) for i in bundle.history[user_id]]
        for scored, ev in zip(served, recommender.evidences(shopper, query, served), strict=True):
            cited = [item_ids.index(h.item_id) for h in ev.history_items]
            if not cited:
                continue
            checked += 1
            without, _ = bundle.retriever.search(remove([frozenset(cited)])[0], 5, exclude=history)
            assert scored.item.index not in {int(i) for i in without}
            partial, _ = bundle.retriever.search(remove([frozenset(cited[:-1])])[0], 5, exclude=history)
            assert scored.item.index in {int(i) for i in partial}
    assert checked > 0


@pytest.mark.parametrize("longer", [False, True])
def test_a_removal_encoder_equals_encoding_each_reduced_history(
    toy_root: Path, longer: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batched pass over sets of removed items gives what encoding each shorter history gives,
    with a session (a known user's fresh likes) and with chosen interests; for a history the tower
    reads whole (its sums minus the removed rows) and for one longer than it reads (older items
    slide into the window)."""
    bundle = Bundle.load(toy_root)
    encoder = Recommender(bundle, TemplateExplainer()).encoder
    spec = encoder.spec
    history = [int(i) for i in bundle.history["u00"]]
    if longer:  # older items the user also chose, first
        older = [i for i in range(1, len(spec.item_ids)) if i not in history][: spec.max_history]
        history = older + history
    assert (len(history) > spec.max_history) == longer
    subtracted: list[int] = []
    whole_history = encoder.encode_without

    def counted(*args: Any) -> np.ndarray | None:
        subtracted.append(len(args[-1]))
        return whole_history(*args)

    monkeypatch.setattr(encoder, "encode_without", counted)
    session = history[-2:]
    sets = [frozenset(), frozenset(history[:1]), frozenset(history[-2:]), frozenset(history)]
    profile = {"age": 31, "gender": "F"}
    encode = removal_encoder(encoder, profile, history, "u00", ["Books"], session=session)
    for removed, vector in zip(sets, encode(sets), strict=True):
        kept = [spec.item_ids[i] for i in history if i not in removed]
        fresh = [spec.item_ids[i] for i in session if i not in removed]
        want = encoder.encode(profile, kept, "u00", ["Books"])
        if fresh:
            want = with_session(want, encoder.encode(None, fresh[-spec.max_history :], None, ()))
        np.testing.assert_allclose(vector, want, atol=1e-6)
    assert bool(subtracted) != longer  # the short history took the subtraction, the long one not
