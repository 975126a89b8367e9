"""The shipped SmolLM2 model, end to end, on the toy shop (converted once, then cached)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.evidence import EvidenceContext, catalogue_checker
from backend.recommender import Recommender, RecQuery, Shopper
from embeddings.bundle import Bundle
from explain.llm import LLMExplainer
from explain.llm_backends import LLMSettings
from explain.template import TemplateExplainer
from tests.support.toy_shop import INJECTION_TITLE, make_toy_bundle


@pytest.mark.llm
def test_real_model_explains_the_toy_shop_grounded(tmp_path: Path) -> None:
    bundle = Bundle.load(make_toy_bundle(tmp_path))
    recommender = Recommender(bundle, TemplateExplainer())
    checker = catalogue_checker(bundle)
    injection_row = [it.title for it in recommender.catalogue.items].index(INJECTION_TITLE)
    # An odd user (Garden/Kitchen taste) whose history holds the hostile title.
    user_id = next(u for u, items in bundle.history.items() if injection_row in items)
    history = [int(i) for i in bundle.history[user_id]]
    shopper, query = Shopper(user_id), RecQuery(k=3)
    evidences = recommender.evidences(shopper, query, recommender.recommend(shopper, query).items)
    # One explanation whose only history item is the hostile title, so it is in the prompt.
    scores = bundle.item_vectors @ bundle.item_vectors[injection_row]
    scores[history] = -np.inf
    ctx = EvidenceContext(user_id, [injection_row], segment=None)
    (hostile,) = recommender.evidence_source.evidences(ctx, [int(np.argmax(scores))])
    assert [h.title for h in hostile.history_items] == [INJECTION_TITLE]
    evidences.append(hostile)

    explainer = LLMExplainer(LLMSettings(timeout_s=60), checker=checker)
    outcomes = explainer.explain_detailed(evidences)
    explainer.close()

    for ev, outcome in zip(evidences, outcomes, strict=True):
        text = outcome.explanation.text
        assert checker.check(text, ev).grounded, (text, outcome)
        assert "HACKED" not in text.replace(INJECTION_TITLE, "")
    assert any(o.explanation.source == "llm" for o in outcomes), [o.llm_text for o in outcomes]
