"""Why an item was recommended, as data: the facts an explanation may state, with ids.

Everything here works on plain inputs (ids, titles, categories, numpy vectors), so the
service, the evaluation command and the tests build evidence the same way without this
package knowing what a bundle is.

Which history items are cited is the caller's choice: given rows (`cited_history`, what the
service passes: a set whose removal verifiably drops the item out of the top-k, found by
`backend.evidence`), the largest measured leave-one-out effects, or, with neither, the item's
nearest neighbours among the history in the model's embedding space.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainrec.errors import DataError

# Feedback events that can only have moved an item up; a dislike is not a reason to show it.
POSITIVE_EVENTS = frozenset({"click", "view", "cart", "purchase", "like", "rating"})


@dataclass(frozen=True)
class EvidenceItem:
    """A history item that supports the recommendation."""

    item_id: str
    title: str
    categories: list[str]
    similarity: float  # cosine between this item's vector and the recommended item's vector
    share: float  # this item's share of the positive dot-product mass over the whole history
    effect: float | None = None  # score drop when the model reads the history without this item


@dataclass(frozen=True)
class SegmentEvidence:
    """How the item stands among users of the user's segment."""

    segment_id: int
    label: str
    item_rank: int  # 1 = the most common item in the segment's histories
    lift: float  # share of segment users with the item / share of all users with it
    segment_size: int


@dataclass(frozen=True)
class ProfileMatch:
    """A profile fact or stated interest that the item matches (cold start)."""

    attribute: str  # "interest" or a profile field such as "age"
    value: str
    lift: float | None = None  # for profile fields: popularity among users sharing the value


@dataclass(frozen=True)
class FeedbackEvidence:
    """Recent feedback on a similar item that moved this one up."""

    item_id: str
    title: str
    event: str
    similarity: float


@dataclass(frozen=True)
class FeedbackEvent:
    """Input to `build_evidence`: one recent feedback event with its item's vector."""

    item_id: str
    title: str
    event: str
    vector: np.ndarray


@dataclass(frozen=True)
class Evidence:
    user_id: str
    item_id: str
    item_title: str
    item_categories: list[str]
    history_items: list[EvidenceItem] = field(default_factory=list)
    shared_categories: list[str] = field(default_factory=list)
    segment: SegmentEvidence | None = None
    profile_matches: list[ProfileMatch] = field(default_factory=list)
    feedback: list[FeedbackEvidence] = field(default_factory=list)
    cold_start: bool = False

    @property
    def has_reasons(self) -> bool:
        """Whether any fact beyond the item itself supports the recommendation."""
        return bool(
            self.history_items
            or self.shared_categories
            or self.segment
            or self.profile_matches
            or self.feedback
        )

    def cited_titles(self) -> list[str]:
        """Titles of every item the evidence names, the recommended item first."""
        titles = [self.item_title]
        titles += [h.title for h in self.history_items]
        titles += [f.title for f in self.feedback]
        return list(dict.fromkeys(titles))

    def cited_categories(self) -> list[str]:
        """Categories a text may name: the item's own (shared ones and matched interests are among them).

        A history item's other categories are left out on purpose: "another Drama pick" about a
        comedy is false even when the user once watched a drama.
        """
        cats = list(self.item_categories) + list(self.shared_categories)
        cats += [m.value for m in self.profile_matches if m.attribute == "interest"]
        return list(dict.fromkeys(cats))

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "item_id": self.item_id,
            "item_title": self.item_title,
            "item_categories": list(self.item_categories),
            "history_items": [
                {
                    "item_id": h.item_id,
                    "title": h.title,
                    "categories": list(h.categories),
                    "similarity": round(h.similarity, 4),
                    "share": round(h.share, 4),
                    "effect": None if h.effect is None else round(h.effect, 4),
                }
                for h in self.history_items
            ],
            "shared_categories": list(self.shared_categories),
            "segment": None
            if self.segment is None
            else {
                "segment_id": self.segment.segment_id,
                "label": self.segment.label,
                "item_rank": self.segment.item_rank,
                "lift": round(self.segment.lift, 4),
                "segment_size": self.segment.segment_size,
            },
            "profile_matches": [
                {
                    "attribute": m.attribute,
                    "value": m.value,
                    "lift": None if m.lift is None else round(m.lift, 4),
                }
                for m in self.profile_matches
            ],
            "feedback": [
                {
                    "item_id": f.item_id,
                    "title": f.title,
                    "event": f.event,
                    "similarity": round(f.similarity, 4),
                }
                for f in self.feedback
            ],
            "cold_start": self.cold_start,
        }

    def fingerprint(self) -> str:
        """Stable hash of the evidence: equal facts give equal keys in the explanation cache."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def item_standing(
    item_index: int,
    group_item_counts: np.ndarray,
    group_size: int,
    all_item_counts: np.ndarray,
    n_users: int,
    rank: int | None = None,
) -> tuple[int, float]:
    """Rank (1 = most common) and lift of one item within a group of users.

    Counts are users per item with the item in their history. Lift is 0 when nobody in the
    group has the item, so an unseen item is never called popular. `rank`, when given, is that
    rank computed beforehand (1 + the number of items with a larger group count).
    """
    group_count = float(group_item_counts[item_index])
    if rank is None:
        rank = 1 + int(np.sum(group_item_counts > group_count))
    overall = float(all_item_counts[item_index])
    if group_count <= 0 or overall <= 0 or group_size <= 0 or n_users <= 0:
        return rank, 0.0
    return rank, (group_count / group_size) / (overall / n_users)


def category_counts(history_categories: Sequence[Sequence[str]]) -> Counter[str]:
    """How many history items carry each category (an item counts once per category)."""
    return Counter(c for cats in history_categories for c in dict.fromkeys(cats))


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def history_scores(
    history_vectors: np.ndarray, history_unit_vectors: np.ndarray, item_vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Dot products and cosines of every history row with every item: two [n_history, n_items]
    matrices (`history_unit_vectors` is `unit_rows(history_vectors)`)."""
    return history_vectors @ item_vectors.T, history_unit_vectors @ unit_rows(item_vectors).T


def _check_vectors(name: str, vectors: np.ndarray, n_rows: int, dim: int) -> None:
    if vectors.ndim != 2 or vectors.shape != (n_rows, dim):
        raise DataError(f"{name} must have shape ({n_rows}, {dim}), got {tuple(vectors.shape)}")


def build_evidence(
    *,
    user_id: str,
    item_id: str,
    item_title: str,
    item_categories: Sequence[str],
    item_vector: np.ndarray,
    history_ids: Sequence[str] = (),
    history_titles: Sequence[str] = (),
    history_categories: Sequence[Sequence[str]] = (),
    history_vectors: np.ndarray | None = None,
    history_effects: np.ndarray | Sequence[float] | None = None,
    cited_history: Sequence[int] | None = None,
    segment: SegmentEvidence | None = None,
    interests: Sequence[str] = (),
    profile_lifts: Sequence[ProfileMatch] = (),
    feedback: Sequence[FeedbackEvent] = (),
    cold_start: bool | None = None,
    max_history_items: int = 3,
    min_similarity: float = 0.0,
    max_shared_categories: int = 3,
    min_segment_lift: float = 1.2,
    top_segment_rank: int = 10,
    min_profile_lift: float = 1.2,
    max_feedback: int = 2,
    history_category_counts: Mapping[str, int] | None = None,
    history_unit_vectors: np.ndarray | None = None,
    history_dots: np.ndarray | None = None,
    history_cosines: np.ndarray | None = None,
) -> Evidence:
    """Collect the facts that support recommending `item_id` to `user_id`.

    History rows are aligned: `history_ids[i]`, `history_titles[i]`, `history_categories[i]`,
    `history_vectors[i]` (and `history_effects[i]`) describe one item. Pass only the history the
    user tower actually reads (its last `max_history` items): an item it never reads cannot be
    a reason. With `history_effects` (the item's score drop when the model reads the history
    without that row, i.e. a leave-one-out fold-in) items are cited by measured effect, and only
    those with a positive one; without, by cosine similarity to the recommended item. With
    `cited_history` (history rows, e.g. a set whose removal verifiably drops the item out of the
    top-k) exactly those rows are cited, in that order, and no other.

    `history_category_counts` is `category_counts(history_categories)`, `history_unit_vectors`
    is `unit_rows(history_vectors)`, and `history_dots` / `history_cosines` are this item's
    column of `history_scores(...)`, for a caller that builds evidence for many items over one
    history and computes them once, in one matrix product for all the items.

    `profile_lifts` are candidate profile facts with their lift for this item; only those above
    `min_profile_lift` are kept. A segment is kept only when the item really stands out there
    (lift or rank), since "popular with shoppers like you" must be true.
    """
    n = len(history_ids)
    if not (len(history_titles) == n and len(history_categories) == n):
        raise DataError(
            f"history ids, titles and categories must have equal lengths, got "
            f"{n}, {len(history_titles)}, {len(history_categories)}"
        )
    item_vec = np.asarray(item_vector, dtype=np.float32).reshape(-1)
    dim = item_vec.shape[0]
    history_items: list[EvidenceItem] = []
    if n:
        if history_vectors is None:
            raise DataError("history_vectors are required when the history is not empty")
        if history_dots is None or history_cosines is None:
            hist = np.asarray(history_vectors, dtype=np.float32)
            _check_vectors("history_vectors", hist, n, dim)
            units = unit_rows(hist) if history_unit_vectors is None else history_unit_vectors
            dots, cosines = history_scores(hist, units, item_vec[None, :])
            dots, cosines = dots[:, 0], cosines[:, 0]
        else:
            dots, cosines = history_dots, history_cosines
            if dots.shape != (n,) or cosines.shape != (n,):
                raise DataError(
                    f"history_dots and history_cosines must have shape ({n},), "
                    f"got {tuple(dots.shape)} and {tuple(cosines.shape)}"
                )
        positive_mass = float(np.maximum(dots, 0.0).sum())
        effects = None if history_effects is None else np.asarray(history_effects, dtype=np.float64)
        if effects is not None and effects.shape != (n,):
            raise DataError(f"history_effects must have shape ({n},), got {tuple(effects.shape)}")
        ranking, floor = (cosines, min_similarity) if effects is None else (effects, 0.0)
        if cited_history is not None:
            bad = [int(i) for i in cited_history if not 0 <= int(i) < n]
            if bad:
                raise DataError(f"cited_history rows {bad} are outside a history of {n} items")
            order: Sequence[int] = [int(i) for i in cited_history]
        else:
            # Stable sort keeps the history order between equal scores: deterministic output.
            order = [int(i) for i in np.argsort(-ranking, kind="stable")]
        seen_titles: set[str] = set()
        for i in order:
            if len(history_items) >= max_history_items:
                break
            if cited_history is None and ranking[i] <= floor:
                break
            if history_ids[i] == item_id or history_titles[i] in seen_titles:
                continue
            seen_titles.add(history_titles[i])
            share = max(float(dots[i]), 0.0) / positive_mass if positive_mass > 0 else 0.0
            history_items.append(
                EvidenceItem(
                    item_id=str(history_ids[i]),
                    title=str(history_titles[i]),
                    categories=[str(c) for c in history_categories[i]],
                    similarity=float(cosines[i]),
                    share=share,
                    effect=None if effects is None else float(effects[i]),
                )
            )

    if history_category_counts is None:
        history_category_counts = category_counts(history_categories)
    shared = sorted(
        (c for c in dict.fromkeys(item_categories) if history_category_counts[c] > 0),
        key=lambda c: -history_category_counts[c],
    )[:max_shared_categories]

    kept_segment = None
    if (
        segment is not None
        and segment.lift > 0
        and (segment.lift >= min_segment_lift or segment.item_rank <= top_segment_rank)
    ):
        kept_segment = segment

    matches = [ProfileMatch("interest", c) for c in dict.fromkeys(interests) if c in item_categories]
    matches += [m for m in profile_lifts if m.lift is not None and m.lift >= min_profile_lift]

    feedback_evidence: list[FeedbackEvidence] = []
    item_unit = unit_rows(item_vec[None, :])[0] if feedback else item_vec
    scored = []
    for event in feedback:
        if event.event not in POSITIVE_EVENTS or event.item_id == item_id:
            continue
        vec = np.asarray(event.vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != dim:
            raise DataError(
                f"feedback vector for item {event.item_id!r} has dim {vec.shape[0]}, expected {dim}"
            )
        similarity = float(unit_rows(vec[None, :])[0] @ item_unit)
        if similarity > min_similarity:
            scored.append(FeedbackEvidence(event.item_id, event.title, event.event, similarity))
    scored.sort(key=lambda f: -f.similarity)
    for fb in scored:
        if len(feedback_evidence) < max_feedback and fb.item_id not in {f.item_id for f in feedback_evidence}:
            feedback_evidence.append(fb)

    return Evidence(
        user_id=str(user_id),
        item_id=str(item_id),
        item_title=str(item_title),
        item_categories=[str(c) for c in item_categories],
        history_items=history_items,
        shared_categories=shared,
        segment=kept_segment,
        profile_matches=matches,
        feedback=feedback_evidence,
        cold_start=(n == 0) if cold_start is None else cold_start,
    )


def evidence_from_dict(data: Mapping[str, Any]) -> Evidence:
    """Inverse of `Evidence.to_dict` (for cached or stored evidence)."""
    try:
        seg = data.get("segment")
        return Evidence(
            user_id=str(data["user_id"]),
            item_id=str(data["item_id"]),
            item_title=str(data["item_title"]),
            item_categories=[str(c) for c in data["item_categories"]],
            history_items=[
                EvidenceItem(
                    h["item_id"],
                    h["title"],
                    list(h["categories"]),
                    h["similarity"],
                    h["share"],
                    h.get("effect"),
                )
                for h in data.get("history_items", [])
            ],
            shared_categories=list(data.get("shared_categories", [])),
            segment=None
            if seg is None
            else SegmentEvidence(
                seg["segment_id"], seg["label"], seg["item_rank"], seg["lift"], seg["segment_size"]
            ),
            profile_matches=[
                ProfileMatch(m["attribute"], m["value"], m.get("lift"))
                for m in data.get("profile_matches", [])
            ],
            feedback=[
                FeedbackEvidence(f["item_id"], f["title"], f["event"], f["similarity"])
                for f in data.get("feedback", [])
            ],
            cold_start=bool(data.get("cold_start", False)),
        )
    except (KeyError, TypeError) as exc:
        raise DataError(f"evidence is missing or has a malformed field: {exc}") from exc
