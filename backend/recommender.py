"""The serving brain: one loaded bundle + fold-in encoder + segments + explainer.

    recommender = Recommender.load(Path("artifacts/bundles"), explainer=TemplateExplainer())
    result = recommender.recommend(Shopper("u42", feedback=events), RecQuery(k=10, explain=True))

It holds no database: routes read the shopper's stored profile and feedback and pass them in,
so any replica answers the same way. A shopper with positive feedback is folded in again (one
user-tower pass over bundle history + feedback); the vector is cached under the id of the
newest event, so a repeat request costs a dict lookup and new feedback changes the key.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from backend.catalogue import Catalogue, ItemRecord
from backend.evidence import EvidenceContext, EvidenceSource, RemovalEncoder, removal_encoder
from embeddings.bundle import Bundle
from embeddings.inference import UserEncoder
from embeddings.retrieval import SearchFilters
from embeddings.segments import SegmentModel
from explain.base import Explainer, Explanation
from explain.evidence import Evidence, FeedbackEvent
from explainrec.errors import DataError

POSITIVE_EVENTS = frozenset({"view", "click", "cart", "purchase", "like"})
MIN_POSITIVE_RATING = 4.0
Strategy = Literal["personalized", "cold-start", "popularity"]


@dataclass(frozen=True)
class Feedback:
    """One stored feedback event, as the recommender needs it (id orders events)."""

    id: int
    item_id: str
    event: str
    value: float | None = None
    timestamp: datetime | None = None


def is_positive(event: str, value: float | None) -> bool:
    if event == "rating":
        return value is not None and value >= MIN_POSITIVE_RATING
    return event in POSITIVE_EVENTS


@dataclass(frozen=True)
class Shopper:
    """Who is asking: an id (maybe unknown to the model), a stored profile, and feedback."""

    user_id: str | None
    profile: Mapping[str, Any] = field(default_factory=dict)
    interests: Sequence[str] = ()
    feedback: Sequence[Feedback] = ()  # oldest first


@dataclass(frozen=True)
class RecQuery:
    k: int = 10
    explain: bool = False
    exclude_seen: bool = True
    filters: SearchFilters | None = None
    exclude_item_ids: Sequence[str] = ()


@dataclass
class ScoredItem:
    item: ItemRecord
    score: float
    explanation: Explanation | None = None


@dataclass
class RecResult:
    user_id: str | None
    model_version: str
    strategy: Strategy
    segment_id: int | None
    segment_name: str | None
    items: list[ScoredItem]


@dataclass
class _UserState:
    vector: np.ndarray | None  # None: nothing known, answer by popularity
    strategy: Strategy
    history: list[int]  # item indices that shaped the vector, oldest first
    profile: dict[str, Any]  # bundle profile overlaid with the stored one
    dismissed: set[int]
    feedback_events: list[Feedback]


def with_session(folded: np.ndarray, session: np.ndarray) -> np.ndarray:
    """The folded-in vector plus the vector of the fresh feedback alone, normalised.

    A known user's id embedding and long history outweigh a few new likes, so the fold-in
    alone barely moves the list; the session vector (the fresh items through the user tower,
    no id, no profile) makes the next list visibly follow what the shopper just did.
    """
    combined = folded + session
    norm = float(np.linalg.norm(combined))
    return (combined / norm).astype(np.float32) if norm > 0 else folded


def _segment_lookup(segments: SegmentModel, size: int) -> Callable[[bytes], int]:
    """A float32 vector's segment, by the vector's bytes, remembered for the `size` latest: the
    same user vector comes back request after request, and the assignment cost ~40 µs."""

    @functools.lru_cache(maxsize=size)
    def segment_of(vector_bytes: bytes) -> int:
        return int(segments.assign(np.frombuffer(vector_bytes, dtype=np.float32)[None, :])[0])

    return segment_of


class Recommender:
    def __init__(
        self,
        bundle: Bundle,
        explainer: Explainer,
        fallback_explainer: Explainer | None = None,
        cache_size: int = 20_000,
    ) -> None:
        self.bundle = bundle
        self.version = bundle.version
        self.spec = bundle.feature_spec
        self.encoder = UserEncoder(bundle)
        self.explainer = explainer
        self.fallback_explainer = fallback_explainer
        self.segments = bundle.segments
        self.segment_names = [p.name for p in self.segments.profiles]
        self.catalogue = Catalogue(
            bundle.items,
            bundle.users,
            self.spec.user_ids,
            bundle.history,
            np.asarray(self.segments.labels, dtype=np.int64),
            self.segments.k,
        )
        self.evidence_source = EvidenceSource(bundle, self.catalogue, self.segment_names)
        self._vectors: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._segment_of_bytes = _segment_lookup(self.segments, cache_size)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls, path: Path, explainer: Explainer, fallback_explainer: Explainer | None = None
    ) -> Recommender:
        return cls(Bundle.load(path), explainer, fallback_explainer)

    # -- lookups --
    def item(self, item_id: str) -> ItemRecord | None:
        index = self.spec.item_index(item_id)
        return self.catalogue.items[index] if index is not None else None

    def knows_user(self, user_id: str) -> bool:
        return self.spec.user_index(user_id) > 0

    def bundle_profile(self, user_id: str) -> dict[str, Any]:
        return dict(self.catalogue.user_profiles.get(user_id, {}))

    def bundle_history(self, user_id: str) -> list[int]:
        history = self.bundle.history.get(user_id)
        return history.tolist() if history is not None else []

    def fold_in(self, shopper: Shopper) -> int | None:
        """Encode the shopper's vector from its current feedback (cached for the next request);
        returns its segment."""
        return self._segment(self._state(shopper).vector)

    def item_indices(self, item_ids: Sequence[str], what: str) -> list[int]:
        """Indices of `item_ids`; DataError naming the unknown ones."""
        found = [self.spec.item_index(i) for i in item_ids]
        unknown = [i for i, idx in zip(item_ids, found, strict=True) if idx is None]
        if unknown:
            raise DataError(f"unknown item ids in {what}: {unknown[:5]}")
        return [int(i) for i in found if i is not None]

    # -- recommendations --
    def recommend(self, shopper: Shopper, query: RecQuery) -> RecResult:
        state = self._state(shopper)
        excluded = self._excluded(state, query)
        if state.vector is None:
            picks = self._popular(query.k, excluded, query.filters)
        else:
            ids, scores = self.bundle.retriever.search(
                state.vector,
                query.k,
                exclude=np.fromiter(excluded, dtype=np.int64, count=len(excluded)),
                filters=query.filters,
            )
            picks = list(zip(ids.tolist(), scores.tolist(), strict=True))
        segment = self._segment(state.vector)
        items = [ScoredItem(self.catalogue.items[i], s) for i, s in picks]
        if query.explain and items:
            self._explain(self._evidence_context(shopper, state, segment, query, excluded), items)
        return RecResult(
            shopper.user_id,
            self.version,
            state.strategy,
            segment,
            self.segment_names[segment] if segment is not None else None,
            items,
        )

    def similar(self, item_id: str, k: int) -> list[ScoredItem]:
        index = self.item_indices([item_id], "path")[0]
        ids, scores = self.bundle.retriever.similar_items(index, k)
        return [ScoredItem(self.catalogue.items[int(i)], float(s)) for i, s in zip(ids, scores, strict=True)]

    def search_items(
        self, q: str | None, category: str | None, limit: int, offset: int
    ) -> tuple[int, list[ItemRecord]]:
        if category is not None and category not in self.catalogue.categories:
            raise DataError(f"unknown category {category!r}; known: {self.catalogue.categories}")
        needle = q.casefold().strip() if q else ""
        matches = [
            it
            for it, title in zip(self.catalogue.items, self.catalogue.titles_lower, strict=True)
            if (not needle or needle in title) and (category is None or category in it.categories)
        ]
        return len(matches), matches[offset : offset + limit]

    # -- internals --
    def _excluded(self, state: _UserState, query: RecQuery) -> set[int]:
        excluded = set(state.dismissed) | set(self.item_indices(list(query.exclude_item_ids), "exclude"))
        if query.exclude_seen:
            excluded.update(state.history)
        return excluded

    def _state(self, shopper: Shopper) -> _UserState:
        user_id = shopper.user_id
        known = user_id is not None and self.knows_user(user_id)
        dismissed: set[int] = set()
        positives: list[int] = []
        usable: list[Feedback] = []
        for event in shopper.feedback:
            index = self.spec.item_index(event.item_id)
            if index is None:  # an item of an older bundle: nothing to fold in
                continue
            usable.append(event)
            if event.event == "dismiss":
                dismissed.add(index)
            elif is_positive(event.event, event.value):
                positives.append(index)
        base = self.bundle_history(user_id) if known and user_id is not None else []
        # Most recent occurrence wins, so a re-liked item moves to the end of the history.
        history = list(dict.fromkeys(reversed(base + positives)))[::-1]
        profile = {**(self.bundle_profile(user_id) if known and user_id else {}), **dict(shopper.profile)}
        interests = list(shopper.interests)
        if known and not positives:
            row = self.bundle.user_row(user_id or "")
            assert row is not None
            return _UserState(
                self.bundle.user_vectors[row], "personalized", history, profile, dismissed, usable
            )
        if (
            not known
            and not positives
            and not interests
            and not any(v not in (None, "") for v in profile.values())
        ):
            return _UserState(None, "popularity", history, profile, dismissed, usable)
        key = (
            user_id if known else None,
            tuple(history[-self.spec.max_history :]),
            tuple(sorted((k, str(v)) for k, v in profile.items())),
            tuple(interests),
        )
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
        if vector is None:
            ids = [self.spec.item_ids[i] for i in history[-self.spec.max_history :]]
            folded = (profile, ids, user_id if known else None, interests)
            if known and positives:
                recent = [self.spec.item_ids[i] for i in positives[-self.spec.max_history :]]
                # The fold-in and the session vector in one forward pass.
                both = self.encoder.encode_many([folded, (None, recent, None, ())])
                vector = with_session(both[0], both[1])
            else:
                vector = self.encoder.encode(*folded)
            with self._lock:
                self._vectors[key] = vector
                if len(self._vectors) > self._cache_size:
                    self._vectors.popitem(last=False)
        return _UserState(
            vector, "personalized" if known else "cold-start", history, profile, dismissed, usable
        )

    def _segment(self, vector: np.ndarray | None) -> int | None:
        if vector is None:
            return None
        return self._segment_of_bytes(np.ascontiguousarray(vector, dtype=np.float32).tobytes())

    def _popular(self, k: int, excluded: set[int], filters: SearchFilters | None) -> list[tuple[int, float]]:
        mask = self.bundle.catalog.eligible(filters)
        picks: list[tuple[int, float]] = []
        for index in self.catalogue.popularity_order:
            i = int(index)
            if i in excluded or (mask is not None and not mask[i]):
                continue
            picks.append((i, float(self.catalogue.popularity_score[i])))
            if len(picks) >= k:
                break
        return picks

    def evidences(self, shopper: Shopper, query: RecQuery, items: Sequence[ScoredItem]) -> list[Evidence]:
        """The evidence `recommend(shopper, query)` explains `items` (its result) with."""
        state = self._state(shopper)
        excluded = self._excluded(state, query)
        ctx = self._evidence_context(shopper, state, self._segment(state.vector), query, excluded)
        return self.evidence_source.evidences(ctx, [scored.item.index for scored in items])

    def removal_encoder(self, shopper: Shopper) -> RemovalEncoder | None:
        """The shopper's vector, as `recommend` computes it, with sets of items taken out of the
        history; None when the shopper gets popularity picks (no vector to take anything from)."""
        return self._removal_encoder(shopper, self._state(shopper))

    def _removal_encoder(self, shopper: Shopper, state: _UserState) -> RemovalEncoder | None:
        if state.vector is None:
            return None
        user_id = shopper.user_id
        known = user_id is not None and self.knows_user(user_id)
        positives = [
            index
            for e in state.feedback_events
            if is_positive(e.event, e.value) and (index := self.spec.item_index(e.item_id)) is not None
        ]
        if known and not positives:
            # Served from the bundle's user vectors, which the tower computed from the bundle profile.
            return removal_encoder(self.encoder, self.bundle_profile(user_id or ""), state.history, user_id)
        return removal_encoder(
            self.encoder,
            state.profile,
            state.history,
            user_id if known else None,
            list(shopper.interests),
            session=positives if known else (),
        )

    def _evidence_context(
        self, shopper: Shopper, state: _UserState, segment: int | None, query: RecQuery, excluded: set[int]
    ) -> EvidenceContext:
        mask = self.bundle.catalog.eligible(query.filters)
        eligible = np.ones(len(self.catalogue.items), dtype=bool) if mask is None else mask.copy()
        eligible[sorted(excluded)] = False
        vectors, items = self.bundle.item_vectors, self.catalogue.items
        recent = [e for e in state.feedback_events[-20:] if is_positive(e.event, e.value)]
        feedback = [
            FeedbackEvent(e.item_id, items[idx].title, e.event, vectors[idx])
            for e in recent
            if (idx := self.spec.item_index(e.item_id)) is not None
        ]
        return EvidenceContext(
            user_id=shopper.user_id or "anonymous",
            history=state.history,
            segment=segment,
            profile=state.profile,
            interests=list(shopper.interests),
            feedback=feedback,
            cold_start=state.strategy != "personalized",
            k=query.k,
            eligible=eligible,
            encode=self._removal_encoder(shopper, state),
            cache_key=(
                shopper.user_id,
                tuple(state.history),
                tuple(sorted((k, str(v)) for k, v in state.profile.items())),
                tuple(shopper.interests),
                tuple(e.id for e in state.feedback_events),
            ),
        )

    def _explain(self, ctx: EvidenceContext, items: list[ScoredItem]) -> None:
        evidences = self.evidence_source.evidences(ctx, [scored.item.index for scored in items])
        try:
            explanations = self.explainer.explain(evidences)
        except Exception:
            if self.fallback_explainer is None:
                raise
            explanations = self.fallback_explainer.explain(evidences)
        for scored, explanation in zip(items, explanations, strict=True):
            scored.explanation = explanation
