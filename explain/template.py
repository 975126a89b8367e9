"""Deterministic explanations: the same evidence always gives the same sentence, instantly.

The template states only what the evidence holds, so it passes the grounding check by
construction; it is what the service falls back to whenever the LLM fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from explain.base import Explanation
from explain.evidence import Evidence

_EVENT_VERBS = {
    "purchase": "bought",
    "cart": "added to your cart",
    "like": "liked",
    "rating": "rated",
    "click": "looked at",
    "view": "looked at",
}


def quote(title: str) -> str:
    return f'"{title}"'


def join_words(words: Sequence[str]) -> str:
    """a / a and b / a, b and c."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def format_lift(lift: float) -> str:
    """The one spelling of a lift used in texts and accepted by the grounding check."""
    return f"{lift:.1f}"


def reasons(evidence: Evidence, max_titles: int = 3) -> list[str]:
    """The evidence as short clauses, strongest first."""
    out: list[str] = []
    # An item both in the history and in recent feedback is named once, by the feedback clause.
    recent = {f.item_id for f in evidence.feedback}
    history = [h for h in evidence.history_items if h.item_id not in recent]
    if history:
        titles = [quote(h.title) for h in history[:max_titles]]
        out.append(f"you liked {join_words(titles)}")
    for fb in evidence.feedback:
        out.append(f"you recently {_EVENT_VERBS.get(fb.event, 'chose')} {quote(fb.title)}")
    if evidence.shared_categories:
        out.append(f"it is in {join_words(evidence.shared_categories)}, like items you chose before")
    interests = [m.value for m in evidence.profile_matches if m.attribute == "interest"]
    if interests:
        out.append(f"it matches your interest in {join_words(interests)}")
    for match in evidence.profile_matches:
        if match.attribute != "interest" and match.lift is not None:
            out.append(
                f"shoppers who share your {match.attribute} ({match.value}) choose it "
                f"{format_lift(match.lift)} times as often as others"
            )
    seg = evidence.segment
    if seg is not None:
        if seg.item_rank <= 10:
            out.append(f"it ranks #{seg.item_rank} among shoppers with tastes like yours")
        else:
            out.append(
                f"shoppers with tastes like yours choose it {format_lift(seg.lift)} times as often as others"
            )
    return out


def join_clauses(clauses: Sequence[str]) -> str:
    # Clauses hold commas of their own, so semicolons keep the list readable.
    if len(clauses) <= 1:
        return "".join(clauses)
    return "; ".join(clauses[:-1]) + "; and " + clauses[-1]


def template_text(evidence: Evidence, max_chars: int = 280) -> str:
    """One sentence; weaker clauses, then extra titles, are dropped until it fits `max_chars`."""
    for max_titles in (3, 2, 1):
        clauses = reasons(evidence, max_titles=max_titles)
        while clauses:
            text = "Recommended because " + join_clauses(clauses) + "."
            if len(text) <= max_chars:
                return text
            clauses = clauses[:-1]
    for clause in reasons(evidence, max_titles=1):
        text = "Recommended because " + clause + "."
        if len(text) <= max_chars:
            return text
    if evidence.has_reasons:
        # Even one clause with one title is too long: the title itself is, so cite without it.
        return "Recommended because it is close to items in your history."
    return "Recommended from your profile and what shoppers choose overall."


class TemplateExplainer:
    """Explainer that never fails and never waits."""

    def __init__(self, max_chars: int = 280) -> None:
        self.max_chars = max_chars

    def explain(self, evidences: Sequence[Evidence]) -> list[Explanation]:
        return [Explanation(template_text(ev, self.max_chars), "template", ev.to_dict()) for ev in evidences]
