"""Top-k item retrieval by inner product, with business filters.

    retriever = FaissRetriever.build(item_vectors, catalog=ItemCatalog.from_items(items, categories))
    ids, scores = retriever.search(user_vector, k=10, exclude=seen_item_indices,
                                   filters=SearchFilters(categories=["Books"], max_price=20.0))

`ExactRetriever` is the reference (a plain matrix product with ineligible items masked out);
`FaissRetriever` must give the same answers (exactly for a flat index, recall@10 >= 0.98 for
IVF/HNSW). Both return item indices best first: shape [k] for one query, [B, k] for a batch.
When fewer than k items are eligible a single query gets a shorter answer and a batch row is
padded with id -1 and score -inf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from embeddings.faiss_index import (
    IndexInfo,
    IndexOptions,
    build_index,
    describe_index,
    maybe_to_gpu,
    recall_at_k,
    search_params,
    set_knob,
)
from explainrec.errors import DataError

__all__ = [
    "ExactRetriever",
    "FaissRetriever",
    "IndexInfo",
    "IndexOptions",
    "ItemCatalog",
    "Retriever",
    "SearchFilters",
    "build_index",
    "recall_at_k",
]

# An exclude argument: one list for every query, or one list per query of a batch.
Exclude = Sequence[int] | np.ndarray | Sequence[Sequence[int] | np.ndarray] | None


@dataclass(frozen=True)
class SearchFilters:
    categories: list[str] | None = None  # allow-list: an item passes when it has any of them
    min_price: float | None = None
    max_price: float | None = None

    @property
    def is_empty(self) -> bool:
        return not self.categories and self.min_price is None and self.max_price is None


@dataclass
class ItemCatalog:
    """The per-item attributes filters look at, aligned with item indices."""

    categories: list[str]
    category_matrix: np.ndarray  # [n_items, n_categories] bool
    prices: np.ndarray  # [n_items] float64, NaN where unknown

    @classmethod
    def from_items(cls, items: pd.DataFrame, categories: Sequence[str]) -> ItemCatalog:
        names = list(categories)
        index = {c: i for i, c in enumerate(names)}
        matrix = np.zeros((len(items), len(names)), dtype=bool)
        for row, cats in enumerate(items["categories"]):
            for c in _as_list(cats):
                j = index.get(str(c))
                if j is not None:
                    matrix[row, j] = True
        if "price" in items.columns:
            prices = pd.to_numeric(items["price"], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        else:
            prices = np.full(len(items), np.nan)
        return cls(names, matrix, prices)

    def eligible(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Boolean mask of items passing `filters`; None when nothing is filtered."""
        if filters is None or filters.is_empty:
            return None
        mask = np.ones(len(self.prices), dtype=bool)
        if filters.categories:
            unknown = [c for c in filters.categories if c not in self.categories]
            if unknown:
                raise DataError(f"unknown categories in filter: {unknown}; known: {self.categories}")
            cols = [self.categories.index(c) for c in filters.categories]
            mask &= self.category_matrix[:, cols].any(axis=1)
        if (
            filters.min_price is not None
            and filters.max_price is not None
            and (filters.min_price > filters.max_price)
        ):
            raise DataError(f"min_price {filters.min_price} is above max_price {filters.max_price}")
        # Items without a price fail any price bound: "under 20" must not show an unpriced item.
        if filters.min_price is not None:
            mask &= self.prices >= float(filters.min_price)
        if filters.max_price is not None:
            mask &= self.prices <= float(filters.max_price)
        return mask


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


class Retriever(Protocol):
    @property
    def n_items(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: Exclude = None,
        filters: SearchFilters | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def similar_items(
        self, item_idx: int, k: int, exclude: Sequence[int] = (), filters: SearchFilters | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


class _RetrieverBase:
    """Argument checks, filter masks and result shaping shared by both retrievers."""

    def __init__(self, vectors: np.ndarray, catalog: ItemCatalog | None) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise DataError(f"item vectors must be a non-empty [n_items, dim] matrix, got {vectors.shape}")
        if catalog is not None and catalog.category_matrix.shape[0] != vectors.shape[0]:
            n_catalog = catalog.category_matrix.shape[0]
            raise DataError(f"catalog has {n_catalog} items but there are {vectors.shape[0]} vectors")
        self.vectors = vectors
        self.catalog = catalog

    @property
    def n_items(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: Exclude = None,
        filters: SearchFilters | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(queries, dtype=np.float32)
        single = q.ndim == 1
        q2 = np.ascontiguousarray(q[None, :] if single else q)
        if q2.ndim != 2 or q2.shape[1] != self.dim:
            raise DataError(f"queries must have shape [{self.dim}] or [B, {self.dim}], got {q.shape}")
        if not np.isfinite(q2).all():
            raise DataError("queries contain NaN or infinite values")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise DataError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), self.n_items)
        excludes = self._per_query_excludes(exclude, len(q2))
        base = self._eligible(filters)
        ids, scores = self._search(q2, k, excludes, base)
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    def similar_items(
        self, item_idx: int, k: int, exclude: Sequence[int] = (), filters: SearchFilters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items closest to `item_idx` in the item tower's space, the item itself left out."""
        if not 0 <= int(item_idx) < self.n_items:
            raise DataError(f"item index {item_idx} is outside 0..{self.n_items - 1}")
        return self.search(self.vectors[int(item_idx)], k, exclude=[int(item_idx), *exclude], filters=filters)

    # -- helpers --
    def _eligible(self, filters: SearchFilters | None) -> np.ndarray | None:
        if filters is None or filters.is_empty:
            return None
        if self.catalog is None:
            raise DataError("this retriever has no item catalog, so it cannot apply category/price filters")
        return self.catalog.eligible(filters)

    def _per_query_excludes(self, exclude: Exclude, batch: int) -> list[np.ndarray]:
        if exclude is None:
            return [np.empty(0, dtype=np.int64)] * batch
        if isinstance(exclude, np.ndarray) and exclude.ndim == 1:  # one flat list: no Python loop
            return [self._check_ids(exclude)] * batch
        items = list(exclude)
        nested = len(items) > 0 and all(isinstance(e, Sequence | np.ndarray) for e in items)
        if nested:
            if len(items) != batch:
                raise DataError(f"exclude has {len(items)} lists for a batch of {batch} queries")
            out = [self._check_ids(e) for e in items]
        else:
            out = [self._check_ids(items)] * batch
        return out

    def _check_ids(self, ids: Any) -> np.ndarray:
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_items):
            bad = arr[(arr < 0) | (arr >= self.n_items)][:5].tolist()
            raise DataError(f"exclude holds item indices outside 0..{self.n_items - 1}: {bad}")
        # Not deduplicated: masks take repeats as they are, and the FAISS path only reads the size,
        # to fetch enough neighbours (a repeat makes it fetch a few more).
        return arr

    def _search(
        self, q: np.ndarray, k: int, excludes: list[np.ndarray], base: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _exact_masked(
        self, query: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of one query over the items where `mask` is True (all when None)."""
        if mask is None:
            return _top_k(self.vectors @ query, k, np.arange(self.n_items))
        candidates = np.flatnonzero(mask)
        if 4 * candidates.size >= self.n_items:
            # Most items remain (a shopper's seen items masked out): scoring all of them and
            # picking the survivors' scores is ~3x cheaper than copying the surviving rows.
            return _top_k((self.vectors @ query)[candidates], k, candidates)
        return _top_k(self.vectors[candidates] @ query, k, candidates)


def _top_k(scores: np.ndarray, k: int, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The k best of `scores` (aligned with `candidates`), padded with -1/-inf to length k."""
    n = min(k, scores.shape[0])
    if n == 0:
        return np.full(k, -1, dtype=np.int64), np.full(k, -np.inf, dtype=np.float32)
    part = np.argpartition(-scores, n - 1)[:n] if n < scores.shape[0] else np.arange(scores.shape[0])
    # Ties broken by item index so both retrievers agree on equal scores.
    order = part[np.lexsort((candidates[part], -scores[part]))]
    if n == k:  # the usual case: nothing to pad
        return candidates[order].astype(np.int64, copy=False), scores[order].astype(np.float32, copy=False)
    ids = np.full(k, -1, dtype=np.int64)
    out = np.full(k, -np.inf, dtype=np.float32)
    ids[:n] = candidates[order]
    out[:n] = scores[order]
    return ids, out


def _mask_for(n: int, base: np.ndarray | None, exclude: np.ndarray) -> np.ndarray | None:
    if base is None and exclude.size == 0:
        return None
    mask = np.ones(n, dtype=bool) if base is None else base.copy()
    mask[exclude] = False
    return mask


class ExactRetriever(_RetrieverBase):
    """Brute-force numpy search: the reference every other retriever is tested against."""

    def __init__(self, vectors: np.ndarray, catalog: ItemCatalog | None = None) -> None:
        super().__init__(vectors, catalog)

    @property
    def description(self) -> str:
        return "exact"

    def _search(
        self, q: np.ndarray, k: int, excludes: list[np.ndarray], base: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.empty((len(q), k), dtype=np.int64)
        scores = np.empty((len(q), k), dtype=np.float32)
        all_scores = q @ self.vectors.T
        everything = np.arange(self.n_items)
        for b in range(len(q)):
            mask = _mask_for(self.n_items, base, excludes[b])
            row = all_scores[b] if mask is None else np.where(mask, all_scores[b], -np.inf)
            n_ok = self.n_items if mask is None else int(mask.sum())
            ids[b], scores[b] = _top_k(row, k, everything)
            ids[b, n_ok:] = -1
            scores[b, n_ok:] = -np.inf
        return ids, scores


class FaissRetriever(_RetrieverBase):
    """Searches a faiss index; filtered queries over-fetch and widen, then fall back to exact.

    A filtered query first asks the index for enough neighbours that k eligible ones are
    expected among them, widens fourfold while too few survive, and answers exactly over the
    eligible items when they are few or widening reaches a quarter of the catalogue: so k
    results come back whenever k items are eligible.
    """

    # Below this many eligible items an exact scan of just those items is cheaper than the index.
    small_subset = 4096

    def __init__(
        self,
        index: Any,
        vectors: np.ndarray,
        catalog: ItemCatalog | None = None,
        info: IndexInfo | None = None,
        use_gpu: bool | None = None,
    ) -> None:
        super().__init__(vectors, catalog)
        if int(index.ntotal) != self.n_items or int(index.d) != self.dim:
            raise DataError(
                f"faiss index holds {index.ntotal} vectors of dim {index.d}, "
                f"but there are {self.n_items} item vectors of dim {self.dim}"
            )
        self.index = index  # the CPU index, what gets saved
        self.info = info or describe_index(index)
        self._search_index = maybe_to_gpu(index, use_gpu)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        catalog: ItemCatalog | None = None,
        options: IndexOptions | None = None,
        tune_queries: np.ndarray | None = None,
        log: Any = None,
    ) -> FaissRetriever:
        index, info = build_index(vectors, options, tune_queries=tune_queries, log=log)
        return cls(index, vectors, catalog, info, use_gpu=(options or IndexOptions()).use_gpu)

    @property
    def description(self) -> str:
        return self.info.description

    def _raw(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        fetch = min(fetch, self.n_items)
        width = self.info.width_for(fetch)
        if width is None:
            scores, ids = self._search_index.search(q, fetch)
        else:
            # IVF cannot probe more lists than it has; HNSW cannot return more than its beam holds.
            width = min(width, int(self.index.nlist)) if self.info.kind == "ivf" else max(width, fetch)
            if self._search_index is self.index:
                # Per-call parameters keep concurrent searches from sharing a mutable setting.
                scores, ids = self.index.search(q, fetch, params=search_params(self.info.kind, width))
            else:
                set_knob(self._search_index, self.info.kind, width)
                scores, ids = self._search_index.search(q, fetch)
        return ids.astype(np.int64, copy=False), scores

    def _search(
        self, q: np.ndarray, k: int, excludes: list[np.ndarray], base: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_items
        n_base = n if base is None else int(base.sum())
        max_excluded = max(e.size for e in excludes)
        if base is None and max_excluded == 0:
            ids, scores = self._raw(q, k)
            return _pad(ids, scores, k)
        out_ids = np.full((len(q), k), -1, dtype=np.int64)
        out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        if n_base - max_excluded <= max(self.small_subset, k):
            for b in range(len(q)):
                out_ids[b], out_scores[b] = self._exact_masked(q[b], k, _mask_for(n, base, excludes[b]))
            return out_ids, out_scores
        # Expected survivors of `fetch` neighbours are fetch * n_base / n, minus the excluded ones.
        fetch = min(n, math.ceil(1.5 * k * n / max(1, n_base)) + max_excluded)
        ids, scores = self._raw(q, fetch)
        for b in range(len(q)):
            mask = _mask_for(n, base, excludes[b])
            out_ids[b], out_scores[b] = self._filtered_one(q[b], k, mask, ids[b], scores[b], fetch)
        return out_ids, out_scores

    def _filtered_one(
        self,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        ids: np.ndarray,
        scores: np.ndarray,
        fetch: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_items
        n_ok = n if mask is None else int(mask.sum())
        want = min(k, n_ok)
        while True:
            valid = ids >= 0
            if mask is not None:
                valid &= mask[np.where(valid, ids, 0)]
            if int(valid.sum()) >= want:
                padded_ids, padded_scores = _pad(ids[valid][None, :k], scores[valid][None, :k], k)
                return padded_ids[0], padded_scores[0]
            fetch *= 4
            if fetch >= n // 4:
                return self._exact_masked(query, k, mask)
            raw_ids, raw_scores = self._raw(query[None, :], fetch)
            ids, scores = raw_ids[0], raw_scores[0]


def _pad(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if ids.shape[1] >= k:
        return ids[:, :k], scores[:, :k]
    pad = k - ids.shape[1]
    return (
        np.pad(ids, ((0, 0), (0, pad)), constant_values=-1),
        np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf),
    )
