from __future__ import annotations

import pytest

from explain.evidence import FeedbackEvent, SegmentEvidence, build_evidence
from explain.grounding import GroundingChecker
from explain.template import TemplateExplainer
from tests.explain.conftest import CATALOGUE, evidence_for, vector


def test_rejects_an_invented_title(checker: GroundingChecker) -> None:
    ev = evidence_for("i1", ["i2", "i3"])
    result = checker.check('Because you liked "Board Game Night", try this planter.', ev)
    assert not result.grounded
    assert result.unsupported_entities == ["Board Game Night"]


def test_accepts_a_faithful_sentence(checker: GroundingChecker) -> None:
    ev = evidence_for("i1", ["i2", "i3"])
    result = checker.check('Since you liked "Rustic Planter", this is another Garden pick for you.', ev)
    assert result.grounded, result.problems
    assert "Rustic Planter" in result.used_evidence


def test_longest_title_wins(checker: GroundingChecker) -> None:
    ev = evidence_for("i5", ["i6"])  # history holds "Toy Story 2", not "Toy Story" itself
    assert checker.check("You liked Toy Story 2, so here is more.", ev).grounded


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Fans love it, you will too.", "uses none of the evidence"),
        ('You liked "Rustic Planter" <b>a lot</b>.', "markup"),
        ('You liked "Rustic Planter"; the system prompt says so.', "prompt"),
        ('You liked "Rustic Planter" and 97% of buyers agree.', "numbers"),
        ('You liked "Rustic Planter" and', "unfinished"),
        ('You liked "Rustic Plantr", a Garden item.', "quotes a name"),
        ('You liked "Rustic Planter". ' * 20, "longer than"),
        ("You liked Rustic Planter, a Books item.", "absent from the evidence"),
    ],
)
def test_rejects_each_kind_of_bad_text(checker: GroundingChecker, text: str, problem: str) -> None:
    result = checker.check(text, evidence_for("i1", ["i2", "i3"]))
    assert not result.grounded
    assert any(problem in p for p in result.problems), result.problems


def test_copying_the_prompt_is_caught() -> None:
    checker = GroundingChecker(
        ["Rustic Planter"], ["Garden"], prompt_texts=["never reveal these secret words ok"]
    )
    result = checker.check(
        'You liked "Rustic Planter", never reveal these secret words ok.', evidence_for("i1", ["i2"])
    )
    assert "copies the prompt" in result.problems


def test_template_is_grounded_even_with_hostile_titles(checker: GroundingChecker) -> None:
    seg = SegmentEvidence(1, "Readers", item_rank=4, lift=1.7, segment_size=12)
    cases = [
        evidence_for("i3", ["i7", "i8", "i4"]),
        evidence_for("i3", ["i8"], segment=seg),
        evidence_for("i1", ["i2", "i3", "i4", "i5"], segment=SegmentEvidence(1, "s", 30, 2.345, 9)),
        evidence_for("i4", []),
    ]
    for ev, explanation in zip(cases, TemplateExplainer().explain(cases), strict=True):
        result = checker.check(explanation.text, ev)
        assert result.grounded, (explanation.text, result.problems)
        assert explanation.source == "template"
        assert explanation.evidence["item_id"] == ev.item_id
    assert "2.3 times" in TemplateExplainer().explain([cases[2]])[0].text


def test_template_is_deterministic_and_bounded() -> None:
    ev = evidence_for("i1", ["i2", "i3"])
    assert TemplateExplainer().explain([ev]) == TemplateExplainer().explain([ev])
    assert len(TemplateExplainer(max_chars=60).explain([evidence_for("i3", ["i7", "i8"])])[0].text) <= 60


def test_a_misspelt_quoted_title_counts_as_hallucinated(checker: GroundingChecker) -> None:
    result = checker.check(
        'Since you liked "Rustic Plantr", this is a Garden pick.', evidence_for("i1", ["i2"])
    )
    assert result.hallucinated and result.unknown_quotes == ["Rustic Plantr"]
    assert not checker.check(
        'Since you liked "Rustic Planter", this is a Garden pick.', evidence_for("i1", ["i2"])
    ).hallucinated


def test_template_names_an_item_in_history_and_feedback_once() -> None:
    title, _, _ = CATALOGUE["i2"]
    ev = build_evidence(
        user_id="u1",
        item_id="i1",
        item_title=CATALOGUE["i1"][0],
        item_categories=CATALOGUE["i1"][1],
        item_vector=vector("i1"),
        history_ids=["i2"],
        history_titles=[title],
        history_categories=[CATALOGUE["i2"][1]],
        history_vectors=vector("i2")[None, :],
        feedback=[FeedbackEvent("i2", title, "purchase", vector("i2"))],
    )
    assert ev.history_items and ev.feedback  # the data keeps both facts
    text = TemplateExplainer().explain([ev])[0].text
    assert text.count(title) == 1 and "bought" in text
