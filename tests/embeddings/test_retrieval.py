"""One contract suite for every retriever; filtered answers are checked against exact search."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from embeddings.benchmark import clustered_vectors
from embeddings.retrieval import (
    ExactRetriever,
    FaissRetriever,
    IndexOptions,
    ItemCatalog,
    SearchFilters,
    recall_at_k,
)
from explainrec.errors import DataError

N_ITEMS, DIM = 3000, 16
CATEGORIES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    x, _ = clustered_vectors(N_ITEMS, DIM, seed=3, n_clusters=30)
    return x


@pytest.fixture(scope="module")
def catalog() -> ItemCatalog:
    rng = np.random.default_rng(5)
    # "e" is rare (about 0.5% of items) so category filters exercise the small-subset path.
    cats = [
        ["e"]
        if rng.random() < 0.005
        else list(rng.choice(CATEGORIES[:4], size=rng.integers(1, 3), replace=False))
        for _ in range(N_ITEMS)
    ]
    prices = rng.uniform(1, 100, size=N_ITEMS)
    prices[::50] = np.nan  # some items have no price
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(N_ITEMS)], "categories": cats, "price": prices})
    return ItemCatalog.from_items(items, CATEGORIES)


def _faiss(kind: str) -> Callable[[np.ndarray, ItemCatalog], FaissRetriever]:
    def make(x: np.ndarray, cat: ItemCatalog) -> FaissRetriever:
        r = FaissRetriever.build(x, cat, IndexOptions(kind=kind, nlist=32 if kind == "ivf" else None))  # type: ignore[arg-type]
        # A tiny small-subset cutoff forces filtered queries through over-fetch-and-widen.
        r.small_subset = 20
        return r

    return make


FACTORIES: dict[str, Callable[[np.ndarray, ItemCatalog], ExactRetriever | FaissRetriever]] = {
    "exact": lambda x, cat: ExactRetriever(x, cat),
    "faiss-flat": _faiss("flat"),
    "faiss-ivf": _faiss("ivf"),
    "faiss-hnsw": _faiss("hnsw"),
}
# Flat answers must equal exact ones; approximate indexes must keep recall@10 >= 0.98.
APPROXIMATE = {"faiss-ivf", "faiss-hnsw"}


@pytest.fixture(scope="module", params=list(FACTORIES))
def named(
    request: pytest.FixtureRequest, vectors: np.ndarray, catalog: ItemCatalog
) -> tuple[str, ExactRetriever | FaissRetriever]:
    return request.param, FACTORIES[request.param](vectors, catalog)


@pytest.fixture(scope="module")
def exact(vectors: np.ndarray, catalog: ItemCatalog) -> ExactRetriever:
    return ExactRetriever(vectors, catalog)


@pytest.fixture(scope="module")
def queries(vectors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(11)
    q = vectors[rng.choice(N_ITEMS, 40, replace=False)] + rng.normal(scale=0.1, size=(40, DIM))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _agree(name: str, got: np.ndarray, want: np.ndarray) -> None:
    if name in APPROXIMATE:
        assert recall_at_k(got, want) >= 0.98
    else:
        assert [set(r) for r in np.atleast_2d(got)] == [set(r) for r in np.atleast_2d(want)]


def test_single_query_shape_and_order(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray
) -> None:
    _, r = named
    ids, scores = r.search(queries[0], k=10)
    assert ids.shape == (10,) and scores.shape == (10,)
    assert ids.dtype == np.int64 and len(set(ids.tolist())) == 10
    assert np.all(np.diff(scores) <= 1e-6), "best first"
    np.testing.assert_allclose(scores, r.vectors[ids] @ queries[0], rtol=1e-5, atol=1e-5)


def test_batch_matches_single_queries(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray
) -> None:
    _, r = named
    ids, scores = r.search(queries[:5], k=7)
    assert ids.shape == (5, 7) and scores.shape == (5, 7)
    for b in range(5):
        single, _ = r.search(queries[b], k=7)
        assert set(single.tolist()) == set(ids[b].tolist())


def test_unfiltered_agrees_with_exact(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray, exact: ExactRetriever
) -> None:
    name, r = named
    _agree(name, r.search(queries, 10)[0], exact.search(queries, 10)[0])


def test_exclude_seen_items_still_gives_k(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray, exact: ExactRetriever
) -> None:
    name, r = named
    # Excluding each query's own top 50 makes the index dig deeper than a plain top-10.
    top50, _ = exact.search(queries, 50)
    ids, _ = r.search(queries, 10, exclude=[row for row in top50])
    want, _ = exact.search(queries, 10, exclude=[row for row in top50])
    for b in range(len(queries)):
        assert not set(ids[b].tolist()) & set(top50[b].tolist())
        assert (ids[b] >= 0).all()
    _agree(name, ids, want)


def test_repeated_excluded_ids_act_once(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray
) -> None:
    _, r = named
    banned = r.search(queries[0], 5)[0]
    once = r.search(queries[0], 10, exclude=banned)
    repeated = r.search(queries[0], 10, exclude=np.concatenate([banned, banned[::-1], banned]))
    np.testing.assert_array_equal(once[0], repeated[0])
    np.testing.assert_array_equal(once[1], repeated[1])
    assert once[0].dtype == np.int64 and once[1].dtype == np.float32


def test_one_exclude_list_applies_to_every_query(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray
) -> None:
    _, r = named
    banned = r.search(queries[0], 5)[0].tolist()
    ids, _ = r.search(queries[:3], 10, exclude=banned)
    assert not set(ids.ravel().tolist()) & set(banned)


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(categories=["a"]),
        SearchFilters(categories=["b", "c"], max_price=40.0),
        SearchFilters(min_price=20.0, max_price=30.0),
        SearchFilters(categories=["e"]),  # rare: under 1% of the catalogue
    ],
)
def test_filters_match_exact(
    named: tuple[str, ExactRetriever | FaissRetriever],
    queries: np.ndarray,
    exact: ExactRetriever,
    catalog: ItemCatalog,
    filters: SearchFilters,
) -> None:
    name, r = named
    mask = catalog.eligible(filters)
    assert mask is not None
    k = min(10, int(mask.sum()))
    seen = exact.search(queries, 5)[0]
    ids, _ = r.search(queries, 10, exclude=[row for row in seen], filters=filters)
    want, _ = exact.search(queries, 10, exclude=[row for row in seen], filters=filters)
    for b in range(len(queries)):
        got = ids[b][ids[b] >= 0]
        assert len(got) >= min(k, int(mask.sum()) - 5), "k results whenever k items are eligible"
        assert mask[got].all()
        assert not set(got.tolist()) & set(seen[b].tolist())
    _agree(name, ids, want)


def test_always_k_when_exactly_k_eligible(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray, catalog: ItemCatalog
) -> None:
    _, r = named
    mask = catalog.eligible(SearchFilters(categories=["e"]))
    assert mask is not None
    eligible = np.flatnonzero(mask)
    k = len(eligible)
    ids, _ = r.search(queries[0], k, filters=SearchFilters(categories=["e"]))
    assert sorted(ids.tolist()) == eligible.tolist()
    # One more than exist: a single query gets the shorter answer, a batch row is padded.
    fewer, _ = r.search(queries[0], k + 3, filters=SearchFilters(categories=["e"]))
    assert len(fewer) == k
    batch, batch_scores = r.search(queries[:2], k + 3, filters=SearchFilters(categories=["e"]))
    assert batch.shape == (2, k + 3) and (batch[:, k:] == -1).all() and np.isneginf(batch_scores[:, k:]).all()


def test_items_without_price_fail_price_filters(
    named: tuple[str, ExactRetriever | FaissRetriever], queries: np.ndarray, catalog: ItemCatalog
) -> None:
    _, r = named
    ids, _ = r.search(queries, 20, filters=SearchFilters(min_price=0.0))
    assert not np.isnan(catalog.prices[ids.ravel()]).any()


def test_similar_items_leave_out_the_item(
    named: tuple[str, ExactRetriever | FaissRetriever], exact: ExactRetriever
) -> None:
    name, r = named
    ids, scores = r.similar_items(7, k=10)
    assert 7 not in ids.tolist() and len(ids) == 10
    assert np.all(np.diff(scores) <= 1e-6)
    _agree(name, ids[None, :], exact.similar_items(7, k=10)[0][None, :])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.search(np.ones(DIM + 1, dtype=np.float32), 5), "shape"),
        (lambda r: r.search(np.ones(DIM, dtype=np.float32), 0), "positive integer"),
        (lambda r: r.search(np.full(DIM, np.nan, dtype=np.float32), 5), "NaN"),
        (lambda r: r.search(np.ones(DIM, dtype=np.float32), 5, exclude=[N_ITEMS]), "outside"),
        (lambda r: r.search(np.ones((2, DIM), dtype=np.float32), 5, exclude=[[1], [2], [3]]), "3 lists"),
        (
            lambda r: r.search(np.ones(DIM, dtype=np.float32), 5, filters=SearchFilters(categories=["zzz"])),
            "unknown categories",
        ),
        (
            lambda r: r.search(
                np.ones(DIM, dtype=np.float32), 5, filters=SearchFilters(min_price=5, max_price=1)
            ),
            "above max_price",
        ),
        (lambda r: r.similar_items(-1, 5), "outside"),
    ],
)
def test_bad_input_is_a_clear_data_error(
    named: tuple[str, ExactRetriever | FaissRetriever],
    call: Callable[[ExactRetriever | FaissRetriever], object],
    message: str,
) -> None:
    _, r = named
    with pytest.raises(DataError, match=message):
        call(r)


def test_k_larger_than_catalogue_returns_everything(vectors: np.ndarray) -> None:
    small = vectors[:12]
    for r in (ExactRetriever(small), FaissRetriever.build(small)):
        ids, _ = r.search(small[0], 50)
        assert sorted(ids.tolist()) == list(range(12))


def test_filters_need_a_catalog(vectors: np.ndarray) -> None:
    with pytest.raises(DataError, match="catalog"):
        ExactRetriever(vectors).search(vectors[0], 5, filters=SearchFilters(categories=["a"]))


def test_auto_index_choice_and_tuned_recall() -> None:
    x, centres = clustered_vectors(6000, 16, seed=1, n_clusters=40)
    small = FaissRetriever.build(x[:500], options=IndexOptions(flat_threshold=1000))
    big = FaissRetriever.build(x, options=IndexOptions(flat_threshold=1000))
    assert small.info.kind == "flat" and big.info.kind == "ivf"
    assert big.info.tuned_recall_at_10 is not None and big.info.tuned_recall_at_10 >= 0.98
    rng = np.random.default_rng(9)
    q = centres[rng.integers(0, 40, 200)] + rng.normal(scale=1 / 4, size=(200, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    truth = ExactRetriever(x).search(q, 10)[0]
    assert recall_at_k(big.search(q, 10)[0], truth) >= 0.98
