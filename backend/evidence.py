"""Evidence for a bundle's (user, item) pairs, built one way for the service and the evaluation.

    source = EvidenceSource(bundle, catalogue, segment_names)
    encode = removal_encoder(UserEncoder(bundle), profile, history, user_id)
    evidences = source.evidences(EvidenceContext(user_id, history, segment, profile, k=10,
                                                 encode=encode), top_k_item_indices)

`Recommender` serves explanations from these evidences and `explainrec evaluate-explanations`
measures the same ones, so what is evaluated is what is served.

Which history items are cited is decided by the model itself (CountER-style necessity): the
smallest set of history items, found greedily and at most `max_cited` large, whose removal from
the history (the user re-encoded by the real user tower) drops the item out of the top-k. An
item for which no such set exists cites no history: its explanation rests on categories, the
segment and profile facts instead, which are true but are not claimed to be necessary.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from backend.catalogue import Catalogue
from embeddings.bundle import Bundle
from embeddings.inference import UserEncoder
from explain.evidence import (
    Evidence,
    FeedbackEvent,
    ProfileMatch,
    SegmentEvidence,
    build_evidence,
    category_counts,
    history_scores,
    item_standing,
    unit_rows,
)
from explain.grounding import GroundingChecker

# How history items are chosen for citing: "counterfactual" (served: a set whose removal drops
# the item out of the top-k), "effect" (largest leave-one-out score drops, necessary or not) or
# "similarity" (embedding neighbours of the item); the last two exist to compare against.
AttributionMode = Literal["counterfactual", "effect", "similarity"]
ATTRIBUTIONS: tuple[AttributionMode, ...] = ("counterfactual", "effect", "similarity")

# Removed item sets -> user vectors [len(sets), d], one batched pass of the user tower.
RemovalEncoder = Callable[[Sequence[frozenset[int]]], np.ndarray]


def removal_encoder(
    encoder: UserEncoder,
    profile: Mapping[str, Any],
    history: Sequence[int],
    user_id: str | None,
    interests: Sequence[str] = (),
    session: Sequence[int] = (),
) -> RemovalEncoder:
    """The user's vector with each given set of items taken out of `history` (oldest first).

    The tower reads the last `max_history` items that remain, so removing a recent item lets an
    older one slide in, as it would if the user had never chosen it. With `session` (a known
    user's fresh positives, see `backend.recommender.with_session`) the session vector without the set
    is added and the sum normalised, as the service does.
    """
    spec = encoder.spec
    clean = {str(k): v for k, v in profile.items() if v is not None and v != ""}
    profile_row = np.asarray(spec.encode_profile(clean), dtype=np.int64)
    user_index = spec.user_index(user_id) if user_id is not None else 0
    chosen = list(interests)
    interest_row = np.asarray(
        spec.encode_interests(chosen) if chosen else [0.0] * len(spec.categories), dtype=np.float32
    )
    items = _OrderedItems(history)
    fresh = _OrderedItems(session)
    no_profile = np.asarray(spec.encode_profile({}), dtype=np.int64)
    blank = np.zeros(len(spec.categories), dtype=np.float32)

    def encode(removed_sets: Sequence[frozenset[int]]) -> np.ndarray:
        n = len(removed_sets)
        if not n:
            return np.zeros((0, encoder.model.config.dim), dtype=np.float32)
        folded = None
        if items.items.size <= spec.max_history:  # the tower reads it all: nothing slides in
            folded = encoder.encode_without(
                profile_row, user_index, interest_row, items.items, items.positions_of(removed_sets)
            )
        if folded is None:
            window, lengths = items.windows_without(removed_sets, spec.max_history)
            folded = encoder.encode_arrays(
                np.tile(profile_row, (n, 1)),
                np.full(n, user_index, dtype=np.int64),
                np.tile(interest_row, (n, 1)),
                window,
                lengths,
            )
        if not fresh.items.size:
            return folded
        window, lengths = fresh.windows_without(removed_sets, spec.max_history)
        with_session = np.flatnonzero(lengths)
        if with_session.size:
            m = with_session.size
            session_vectors = encoder.encode_arrays(
                np.tile(no_profile, (m, 1)),
                np.zeros(m, dtype=np.int64),
                np.tile(blank, (m, 1)),
                window[with_session],
                lengths[with_session],
            )
            combined = folded[with_session] + session_vectors
            norms = np.linalg.norm(combined, axis=1, keepdims=True)
            folded[with_session] = combined / np.maximum(norms, 1e-12)
        return folded

    return encode


class _OrderedItems:
    """Item indices, oldest first, and where each occurs: the rows of many removal sets at once."""

    def __init__(self, items: Sequence[int]) -> None:
        self.items = np.asarray([int(i) for i in items], dtype=np.int64)
        self.positions: dict[int, list[int]] = {}
        for position, item in enumerate(self.items.tolist()):
            self.positions.setdefault(item, []).append(position)

    def positions_of(self, removed_sets: Sequence[frozenset[int]]) -> list[list[int]]:
        """For each set: the positions its items occupy, every occurrence."""
        return [[p for i in removed for p in self.positions.get(i, ())] for removed in removed_sets]

    def windows_without(
        self, removed_sets: Sequence[frozenset[int]], max_length: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each set: the last `max_length` items not in it, right-aligned in a [sets, L] matrix
        (L the longest such window, zeros before each), and the window lengths. Equal to taking
        `[i for i in items if i not in s][-max_length:]` per set, without a Python loop over items."""
        kept = np.ones((len(removed_sets), self.items.size), dtype=bool)
        rows = [
            s for s, removed in enumerate(removed_sets) for i in removed for _ in self.positions.get(i, ())
        ]
        columns = [p for removed in removed_sets for i in removed for p in self.positions.get(i, ())]
        kept[rows, columns] = False
        # For each kept item: how many kept items there are from it to the end (1 = the last).
        from_end = np.cumsum(kept[:, ::-1], axis=1)[:, ::-1]
        take = kept & (from_end <= max_length)
        lengths = take.sum(axis=1)
        width = int(lengths.max()) if lengths.size else 0
        window = np.zeros((len(removed_sets), width), dtype=np.int64)
        r, c = np.nonzero(take)
        window[r, width - from_end[r, c]] = self.items[c]
        return window, lengths


@dataclass(frozen=True)
class Attribution:
    """Why one item is in the top-k, in terms of the history window the tower reads."""

    effects: np.ndarray  # [len(window)]: the item's score drop when that one row is removed
    necessary: tuple[int, ...]  # window rows whose joint removal drops the item; () if none found


class _Competition:
    """Per row of `scores`: the k-th and (k+1)-th best scores among eligible items, found once
    per batch of rows and shared by every item asked about."""

    def __init__(
        self, scores: np.ndarray, eligible: np.ndarray, k: int, shortlist: int | None = None
    ) -> None:
        self.scores = scores
        self.eligible = eligible
        contenders = _contenders(scores, eligible, k, shortlist or max(32, 4 * (k + 1)))
        pool = np.where(eligible, scores, -np.inf) if contenders is None else scores[:, contenders]
        # One partition for the best k + 1, then a sort of just those (two kth at once is slower).
        best = np.sort(np.partition(pool, -k - 1, axis=1)[:, -k - 1 :], axis=1)
        self.kth, self.next_kth = best[:, 1], best[:, 0]

    def margins(self, item: int, rows: Sequence[int] | slice = slice(None)) -> np.ndarray:
        """For `rows`: the item's score minus the k-th best score of the other eligible items.

        Negative means the item is out of the top-k. Taking the item out of its own competition
        moves the k-th best to the (k+1)-th exactly when the item is eligible and scores at
        least the k-th best itself.
        """
        own = self.scores[rows, item]
        kth = self.kth[rows]
        if self.eligible[item]:
            kth = np.where(own >= kth, self.next_kth[rows], kth)
        return np.asarray(own - kth)


def _contenders(scores: np.ndarray, eligible: np.ndarray, k: int, shortlist: int) -> np.ndarray | None:
    """The eligible columns that can be among any row's best k + 1, or None to use them all.

    Every row scores at least t_r on k + 1 of the `shortlist` columns of highest column maximum
    (t_r: its (k + 1)-th best there), so its best k + 1 over all columns are all >= t_r. A column
    whose maximum over the rows is below min_r t_r is below every row's (k + 1)-th best and
    changes no row's best k + 1 values; dropping it is exact, ties included. Removal sets move the
    user vector little, so the rows agree on their leaders and a few columns in a hundred stay:
    the partition, the costly step, then reads those alone."""
    columns = np.flatnonzero(eligible)
    if columns.size <= 2 * shortlist:
        return None
    column_max = scores.max(axis=0)[columns]
    leaders = columns[np.argpartition(column_max, -shortlist)[-shortlist:]]
    floor = np.partition(scores[:, leaders], -k - 1, axis=1)[:, -k - 1].min()
    kept = columns[column_max >= floor]
    return kept if kept.size * 2 < columns.size else None


class _RemovalScores:
    """Scores of removal-set user vectors against only the item columns that can matter.

    A removal set moves the user vector u_0 (nothing removed) to u_r by d_r = |u_r - u_0|, so no
    item's score moves by more than d_r * L (L: the largest item-vector length, Cauchy-Schwarz).
    An eligible item whose base score is below the base's (k+1)-th best minus 2 d_r L therefore
    stays below row r's (k+1)-th best, and the k-th / (k+1)-th best need only the others. Those
    are a few columns in a hundred when removals are small, so each step scores [sets, few]
    instead of [sets, n_items] (which with 1 024-wide vectors was most of a first explanation).
    Exact up to float32 rounding of the products: every batch is checked against the bound and
    scored in full where it does not hold.
    """

    def __init__(
        self,
        base_vector: np.ndarray,
        item_vectors: np.ndarray,
        eligible: np.ndarray,
        k: int,
        always: Sequence[int],
        norm_bound: float,
    ) -> None:
        self.base_vector = base_vector
        self.item_vectors = item_vectors
        self.eligible = eligible
        self.k = k
        self.always = np.unique(np.asarray(always, dtype=np.int64))  # the served items' own scores
        self.norm_bound = norm_bound
        self.base_scores = item_vectors @ base_vector
        eligible_scores = self.base_scores[eligible]
        self.threshold = float(np.partition(eligible_scores, -k - 1)[-k - 1])
        # float32 rounding of the products, so that the bound never excludes a real contender.
        self.slack = 1e-5 * max(norm_bound, 1.0) * max(float(np.linalg.norm(base_vector)), 1.0)

    def score(self, vectors: np.ndarray) -> tuple[_Competition, np.ndarray]:
        """The competition of these rows and, per item, its column there (-1: not scored)."""
        n_items = self.item_vectors.shape[0]
        shifts = np.linalg.norm(vectors - self.base_vector, axis=1) * self.norm_bound
        floor = self.threshold - 2.0 * float(shifts.max(initial=0.0)) - self.slack
        wanted = self.eligible & (self.base_scores >= floor)
        wanted[self.always] = True
        columns = np.flatnonzero(wanted)
        if columns.size * 2 < n_items:
            competition = _Competition(vectors @ self.item_vectors[columns].T, self.eligible[columns], self.k)
            left_out = self.eligible & ~wanted
            best_left_out = float(self.base_scores[left_out].max(initial=-np.inf))
            # Each row's (k+1)-th best among the scored columns beats everything left out.
            if np.all(best_left_out + shifts + self.slack < competition.next_kth):
                position = np.full(n_items, -1, dtype=np.int64)
                position[columns] = np.arange(columns.size)
                return competition, position
        return _Competition(vectors @ self.item_vectors.T, self.eligible, self.k), np.arange(n_items)


def attribute(
    encode: RemovalEncoder,
    window: Sequence[int],
    items: Sequence[int],
    item_vectors: np.ndarray,
    eligible: np.ndarray,
    k: int,
    max_size: int = 3,
    candidates: int = 8,
    norm_bound: float | None = None,
) -> list[Attribution]:
    """For each of `items` (the served top-k), the smallest set of window rows, greedily grown to
    at most `max_size`, whose removal drops it out of the top-k among `eligible` items.

    Step one removes each row alone (one batched pass shared by all items, which also gives the
    leave-one-out effects); each later step extends every unresolved item's best set by one of its
    `candidates` strongest single rows, all items in one batched pass. The greedy criterion is the
    item's margin over the k-th competitor, not its raw score: removing an item that also lifts
    the competitors can lower the score without changing the rank. `norm_bound`: the largest
    length of `item_vectors` (computed when not given; callers with a fixed catalogue pass it).
    """
    rows = [int(i) for i in window]
    n = len(rows)
    if not items or not n or int(eligible.sum()) <= k:
        return [Attribution(np.zeros(n), ()) for _ in items]
    singles = [frozenset({i}) for i in rows]
    vectors = encode([frozenset(), *singles])
    if norm_bound is None:
        norm_bound = float(np.linalg.norm(item_vectors, axis=1).max())
    scorer = _RemovalScores(vectors[0], item_vectors, eligible, k, items, norm_bound)
    competition, column = scorer.score(vectors)  # scores [1 + n, columns]
    scores = competition.scores
    found: dict[int, tuple[int, ...]] = {}
    best: dict[int, tuple[int, ...]] = {}
    shortlist: dict[int, list[int]] = {}
    effects: dict[int, np.ndarray] = {}
    for j, item in enumerate(items):
        effects[j] = scores[0, column[item]] - scores[1:, column[item]]
        margins = competition.margins(int(column[item]))
        if margins[0] < 0:  # not in the top-k to begin with (the served vector is another one)
            continue
        order = [int(m) for m in np.argsort(margins[1:], kind="stable")]
        if margins[1 + order[0]] < 0:
            found[j] = (order[0],)
        else:
            best[j] = (order[0],)
            shortlist[j] = order[:candidates]
    for _ in range(1, max_size):
        asks = [(j, (*best[j], m)) for j in best for m in shortlist[j] if m not in best[j]]
        if not asks:
            break
        vectors = encode([frozenset(rows[m] for m in chosen) for _, chosen in asks])
        competition, column = scorer.score(vectors)
        still: dict[int, tuple[int, ...]] = {}
        for j in best:
            picks = [r for r, (jj, _) in enumerate(asks) if jj == j]
            if not picks:
                continue
            margins = competition.margins(int(column[items[j]]), picks)
            top = int(np.argmin(margins))
            chosen = asks[picks[top]][1]
            if margins[top] < 0:
                found[j] = chosen
            else:
                still[j] = chosen
        best = still
    return [Attribution(np.asarray(effects.get(j, np.zeros(n))), found.get(j, ())) for j in range(len(items))]


def _names(value: Any) -> list[str]:
    if value is None or isinstance(value, float):  # float: a missing value (NaN)
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def catalogue_checker(bundle: Bundle) -> GroundingChecker:
    """The grounding check against a bundle's whole catalogue: every title, category and brand."""
    items = bundle.items
    categories = {c for cats in items["categories"] for c in _names(cats)}
    categories |= set(bundle.feature_spec.categories)
    brands = sorted({b for v in items["brand"] for b in _names(v)}) if "brand" in items else []
    return GroundingChecker(
        items["title"].astype(str).tolist(), sorted(categories), catalogue_attributes=brands
    )


@dataclass(frozen=True)
class EvidenceContext:
    """Who is asking and what the model read for them."""

    user_id: str
    history: Sequence[int]  # item indices, oldest first; the tower reads the last max_history
    segment: int | None
    profile: Mapping[str, Any] = field(default_factory=dict)
    interests: Sequence[str] = ()
    feedback: Sequence[FeedbackEvent] = ()
    cold_start: bool = False
    k: int = 10
    eligible: np.ndarray | None = None  # items that could have been recommended; None: all unseen
    encode: RemovalEncoder | None = None  # None: no model at hand, cite history by similarity
    cache_key: Hashable | None = None  # equal keys: equal user state (attributions are reused)


@dataclass(frozen=True)
class _Window:
    """What `build_evidence` reads about the history window, aligned row by row."""

    ids: list[str]
    titles: list[str]
    categories: Sequence[Sequence[str]]
    vectors: np.ndarray | None
    unit_vectors: np.ndarray | None
    category_counts: Mapping[str, int]


class EvidenceSource:
    """Builds `Evidence` for one bundle: titles, categories, vectors, segment standing, profile
    lifts, and history items cited by counterfactual necessity."""

    def __init__(
        self,
        bundle: Bundle,
        catalogue: Catalogue,
        segment_names: Sequence[str],
        max_cited: int = 3,
        cache_size: int = 20_000,
        attribution: AttributionMode = "counterfactual",
    ) -> None:
        self.bundle = bundle
        self.catalogue = catalogue
        self.segment_names = list(segment_names)
        self.max_cited = max_cited
        self.attribution = attribution
        self.max_history = bundle.feature_spec.max_history
        self.vectors = bundle.item_vectors
        self.norm_bound = float(np.linalg.norm(self.vectors, axis=1).max())
        self._attributions: OrderedDict[Hashable, list[Attribution]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def checker(self) -> GroundingChecker:
        return catalogue_checker(self.bundle)

    def attributions(self, ctx: EvidenceContext, items: Sequence[int]) -> list[Attribution]:
        window = [int(i) for i in ctx.history[-self.max_history :]]
        if ctx.encode is None or not window:
            return [Attribution(np.zeros(len(window)), ()) for _ in items]
        eligible = ctx.eligible
        if eligible is None:
            eligible = np.ones(len(self.vectors), dtype=bool)
            eligible[[int(i) for i in ctx.history]] = False
        key = None
        if ctx.cache_key is not None:
            key = (ctx.cache_key, tuple(int(i) for i in items), ctx.k, hash(np.packbits(eligible).tobytes()))
            with self._lock:
                cached = self._attributions.get(key)
                if cached is not None:
                    self._attributions.move_to_end(key)
                    return cached
        made = attribute(
            ctx.encode,
            window,
            items,
            self.vectors,
            eligible,
            ctx.k,
            self.max_cited,
            norm_bound=self.norm_bound,
        )
        if key is not None:
            with self._lock:
                self._attributions[key] = made
                if len(self._attributions) > self._cache_size:
                    self._attributions.popitem(last=False)
        return made

    def evidences(self, ctx: EvidenceContext, items: Sequence[int]) -> list[Evidence]:
        """Evidence for each of `items` (the served top-k, best first)."""
        use_model = ctx.encode is not None and self.attribution != "similarity"
        attributions = self.attributions(ctx, items) if use_model else None
        window = self._window(ctx)
        indices = [int(item) for item in items]
        dots = cosines = None
        if window.vectors is not None and window.unit_vectors is not None and indices:
            dots, cosines = history_scores(window.vectors, window.unit_vectors, self.vectors[indices])
        return [
            self._evidence(
                ctx,
                item,
                window,
                None if attributions is None else attributions[j],
                None if dots is None or cosines is None else (dots[:, j], cosines[:, j]),
            )
            for j, item in enumerate(indices)
        ]

    def _window(self, ctx: EvidenceContext) -> _Window:
        """The history rows the tower reads, gathered once for all the items of a request."""
        indices = [int(i) for i in ctx.history[-self.max_history :]]
        records = [self.catalogue.items[i] for i in indices]
        categories = [r.categories for r in records]
        vectors = self.vectors[indices] if indices else None
        return _Window(
            ids=[r.item_id for r in records],
            titles=[r.title for r in records],
            categories=categories,
            vectors=vectors,
            unit_vectors=unit_rows(vectors) if vectors is not None else None,
            category_counts=category_counts(categories),
        )

    def _evidence(
        self,
        ctx: EvidenceContext,
        item: int,
        window: _Window,
        attribution: Attribution | None,
        scores: tuple[np.ndarray, np.ndarray] | None,
    ) -> Evidence:
        cat = self.catalogue
        record = cat.items[item]
        seg_evidence = None
        if ctx.segment is not None and cat.segment_sizes[ctx.segment] > 0:
            rank, lift = item_standing(
                item,
                cat.segment_users_per_item[ctx.segment],
                int(cat.segment_sizes[ctx.segment]),
                cat.users_per_item,
                max(1, cat.users_with_history),
                rank=int(cat.segment_item_rank[ctx.segment, item]),
            )
            seg_evidence = SegmentEvidence(
                ctx.segment, self.segment_names[ctx.segment], rank, lift, int(cat.segment_sizes[ctx.segment])
            )
        profile_lifts = [
            ProfileMatch(name, str(value), cat.profile_lift(name, str(value), item))
            for name, value in ctx.profile.items()
            if value not in (None, "")
        ]
        return build_evidence(
            user_id=ctx.user_id,
            item_id=record.item_id,
            item_title=record.title,
            item_categories=record.categories,
            item_vector=self.vectors[item],
            history_ids=window.ids,
            history_titles=window.titles,
            history_categories=window.categories,
            history_vectors=window.vectors,
            history_category_counts=window.category_counts,
            history_unit_vectors=window.unit_vectors,
            history_dots=None if scores is None else scores[0],
            history_cosines=None if scores is None else scores[1],
            history_effects=None if attribution is None else attribution.effects,
            cited_history=(
                attribution.necessary
                if attribution is not None and self.attribution == "counterfactual"
                else None
            ),
            segment=seg_evidence,
            interests=list(ctx.interests),
            profile_lifts=profile_lifts,
            feedback=ctx.feedback,
            cold_start=ctx.cold_start,
            max_history_items=self.max_cited,
        )
