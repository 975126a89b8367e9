from __future__ import annotations

import json

import numpy as np
import pytest

from explain.evidence import (
    FeedbackEvent,
    ProfileMatch,
    SegmentEvidence,
    build_evidence,
    evidence_from_dict,
    history_scores,
    item_standing,
    unit_rows,
)
from explainrec.errors import DataError
from tests.explain.conftest import evidence_for, vector


def test_planted_cause_is_cited_first() -> None:
    ev = evidence_for("i1", ["i3", "i4", "i2", "i5"])
    assert ev.history_items[0].item_id == "i2"
    # Orthogonal history items did not pull the user towards i1: they are not reasons.
    assert {h.item_id for h in ev.history_items} == {"i2"}
    assert ev.history_items[0].share == pytest.approx(1.0)
    assert ev.shared_categories == ["Garden"]
    assert not ev.cold_start


def test_evidence_is_json_with_ids_and_round_trips() -> None:
    seg = SegmentEvidence(2, "Gardeners", item_rank=3, lift=2.5, segment_size=40)
    ev = evidence_for("i1", ["i2", "i3"], segment=seg)
    data = json.loads(json.dumps(ev.to_dict()))
    assert data["item_id"] == "i1" and data["history_items"][0]["item_id"] == "i2"
    assert data["segment"]["segment_id"] == 2
    assert evidence_from_dict(data).to_dict() == ev.to_dict()


def test_fingerprint_follows_the_facts() -> None:
    a = evidence_for("i1", ["i2", "i3"])
    assert a.fingerprint() == evidence_for("i1", ["i2", "i3"]).fingerprint()
    assert a.fingerprint() != evidence_for("i1", ["i3", "i4"]).fingerprint()


def test_segment_kept_only_when_the_item_stands_out() -> None:
    weak = SegmentEvidence(1, "s", item_rank=40, lift=1.0, segment_size=10)
    strong = SegmentEvidence(1, "s", item_rank=40, lift=1.8, segment_size=10)
    top = SegmentEvidence(1, "s", item_rank=2, lift=1.0, segment_size=10)
    unseen = SegmentEvidence(1, "s", item_rank=1, lift=0.0, segment_size=10)
    assert evidence_for("i1", ["i2"], segment=weak).segment is None
    assert evidence_for("i1", ["i2"], segment=strong).segment == strong
    assert evidence_for("i1", ["i2"], segment=top).segment == top
    assert evidence_for("i1", ["i2"], segment=unseen).segment is None


def test_item_standing_rank_and_lift() -> None:
    group = np.array([5.0, 2.0, 0.0])
    overall = np.array([10.0, 2.0, 4.0])
    assert item_standing(0, group, 10, overall, 100) == (1, pytest.approx((5 / 10) / (10 / 100)))
    assert item_standing(2, group, 10, overall, 100) == (3, 0.0)


def test_cold_start_profile_and_interests() -> None:
    ev = build_evidence(
        user_id="new",
        item_id="i1",
        item_title="Garden Planter",
        item_categories=["Garden"],
        item_vector=vector("i1"),
        interests=["Books", "Garden"],
        profile_lifts=[ProfileMatch("age", "25-34", 1.9), ProfileMatch("gender", "F", 1.05)],
    )
    assert ev.cold_start and not ev.history_items
    assert [(m.attribute, m.value) for m in ev.profile_matches] == [("interest", "Garden"), ("age", "25-34")]


def test_only_positive_similar_feedback_counts() -> None:
    ev = build_evidence(
        user_id="u1",
        item_id="i1",
        item_title="Garden Planter",
        item_categories=["Garden"],
        item_vector=vector("i1"),
        feedback=[
            FeedbackEvent("i2", "Rustic Planter", "purchase", vector("i2")),
            FeedbackEvent("i2", "Rustic Planter", "dislike", vector("i2")),
            FeedbackEvent("i3", "Classic Novel", "like", vector("i3")),
        ],
    )
    assert [(f.item_id, f.event) for f in ev.feedback] == [("i2", "purchase")]


def test_misaligned_inputs_are_a_data_error() -> None:
    with pytest.raises(DataError, match="equal lengths"):
        build_evidence(
            user_id="u",
            item_id="i1",
            item_title="t",
            item_categories=[],
            item_vector=vector("i1"),
            history_ids=["i2"],
            history_titles=[],
            history_categories=[],
        )
    with pytest.raises(DataError, match="shape"):
        build_evidence(
            user_id="u",
            item_id="i1",
            item_title="t",
            item_categories=[],
            item_vector=vector("i1"),
            history_ids=["i2"],
            history_titles=["x"],
            history_categories=[[]],
            history_vectors=np.zeros((1, 3), dtype=np.float32),
        )


def test_scores_computed_for_many_items_at_once_give_the_same_evidence() -> None:
    rng = np.random.default_rng(3)
    history = rng.normal(size=(6, 8)).astype(np.float32)
    items = rng.normal(size=(4, 8)).astype(np.float32)
    dots, cosines = history_scores(history, unit_rows(history), items)
    assert dots.shape == cosines.shape == (6, 4)
    common = {
        "user_id": "u",
        "item_title": "t",
        "item_categories": ["Books"],
        "history_ids": [f"h{i}" for i in range(6)],
        "history_titles": [f"title {i}" for i in range(6)],
        "history_categories": [["Books"]] * 6,
        "history_vectors": history,
    }
    for j in range(4):
        alone = build_evidence(item_id=f"i{j}", item_vector=items[j], **common)
        batched = build_evidence(
            item_id=f"i{j}",
            item_vector=items[j],
            history_dots=dots[:, j],
            history_cosines=cosines[:, j],
            **common,
        )
        assert batched.to_dict() == alone.to_dict()
    with pytest.raises(DataError, match="history_dots"):
        build_evidence(
            item_id="i0",
            item_vector=items[0],
            history_dots=dots[:3, 0],
            history_cosines=cosines[:, 0],
            **common,
        )
