"""Counterfactual attribution on a planted linear tower: the cited set is the one that is needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from backend.evidence import _Competition, _contenders, _OrderedItems, _RemovalScores, attribute

# Items 0..5 on 3 axes. The user vector is the mean of the history's vectors (a planted tower).
ITEMS = np.asarray(
    [
        [1.0, 0.0, 0.0],  # 0: history, the only one pointing at item 3
        [0.0, 1.0, 0.0],  # 1: history
        [0.0, 1.0, 0.1],  # 2: history
        [0.5, 0.0, 0.0],  # 3: recommended because of 0
        [0.0, 0.9, 0.0],  # 4: recommended because of 1 and 2 together
        [0.0, 0.1, 1.0],  # 5: a competitor that takes a freed slot
    ],
    dtype=np.float32,
)
HISTORY = [0, 1, 2]


def mean_tower(removed_sets: Sequence[frozenset[int]]) -> np.ndarray:
    out = []
    for removed in removed_sets:
        kept = [i for i in HISTORY if i not in removed]
        out.append(ITEMS[kept].mean(axis=0) if kept else np.zeros(3, dtype=np.float32))
    return np.asarray(out, dtype=np.float32)


def eligible() -> np.ndarray:
    mask = np.ones(len(ITEMS), dtype=bool)
    mask[HISTORY] = False
    return mask


def test_single_necessary_item_is_found() -> None:
    (att,) = attribute(mean_tower, HISTORY, [3], ITEMS, eligible(), k=2)
    assert att.necessary == (0,)
    assert att.effects[0] > 0 and att.effects.argmax() == 0


def test_a_pair_is_cited_when_no_single_item_is_enough() -> None:
    # Item 4 leads at k=1 thanks to rows 1 and 2; removing either alone leaves it on top.
    (att,) = attribute(mean_tower, HISTORY, [4], ITEMS, eligible(), k=1)
    assert sorted(att.necessary) == [1, 2]


def test_nothing_is_cited_beyond_the_bound_or_with_too_few_items() -> None:
    (att,) = attribute(mean_tower, HISTORY, [4], ITEMS, eligible(), k=1, max_size=1)
    assert att.necessary == ()
    (att,) = attribute(mean_tower, HISTORY, [3], ITEMS, eligible(), k=3)  # 3 eligible items: never out
    assert att.necessary == ()


def brute_margins(scores: np.ndarray, item: int, eligible: np.ndarray, k: int) -> np.ndarray:
    """The definition: the item's score minus the k-th best of the other eligible items."""
    others = np.where(eligible, scores, -np.inf)
    others[:, item] = -np.inf
    return scores[:, item] - np.sort(others, axis=1)[:, -k]


def test_shared_competition_margins_equal_the_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    for trial in range(50):
        n_items, k = int(rng.integers(4, 30)), int(rng.integers(1, 4))
        # Few distinct values, so ties at the k-th place are common.
        scores = rng.integers(0, 4, size=(6, n_items)).astype(np.float32)
        mask = rng.random(n_items) < 0.7
        if int(mask.sum()) <= k:
            continue
        competition = _Competition(scores, mask, k)
        for item in range(n_items):
            expected = brute_margins(scores, item, mask, k)
            np.testing.assert_array_equal(competition.margins(item), expected, err_msg=f"trial {trial}")
            np.testing.assert_array_equal(competition.margins(item, [1, 3]), expected[[1, 3]])


def test_windows_without_each_set_equal_the_list_definition() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        items = rng.integers(0, 12, size=int(rng.integers(0, 15))).tolist()  # repeats included
        sets = [
            frozenset(rng.choice(14, size=int(rng.integers(0, 4)), replace=False).tolist()) for _ in range(6)
        ]
        max_length = int(rng.integers(1, 8))
        window, lengths = _OrderedItems(items).windows_without(sets, max_length)
        want = [[i for i in items if i not in s][-max_length:] for s in sets]
        assert lengths.tolist() == [len(w) for w in want]
        assert window.shape == (len(sets), max((len(w) for w in want), default=0))
        for row, expected in zip(window, want, strict=True):
            assert row[row.size - len(expected) :].tolist() == expected
            assert not row[: row.size - len(expected)].any()


def test_competition_over_the_few_contending_columns_equals_the_full_one() -> None:
    # Many items, rows that agree on their leaders (as removal sets do) or not at all, and ties:
    # the k-th and (k+1)-th best read off the contending columns alone equal the full partition's.
    rng = np.random.default_rng(3)
    pruned = 0
    for trial in range(60):
        n_items, k, rows = int(rng.integers(50, 400)), int(rng.integers(1, 11)), int(rng.integers(1, 40))
        base = rng.normal(size=n_items)
        spread = float(rng.choice([0.01, 0.1, 1.0, 10.0]))
        scores = (base + spread * rng.normal(size=(rows, n_items))).astype(np.float32)
        if trial % 3 == 0:
            scores = np.round(scores, 1)  # ties at the k-th place
        mask = rng.random(n_items) < float(rng.choice([0.3, 0.9, 1.0]))
        if int(mask.sum()) <= k:
            continue
        shortlist = int(rng.integers(k + 1, 3 * (k + 1)))
        fast = _Competition(scores, mask, k, shortlist=shortlist)
        full = _Competition(scores, mask, k, shortlist=n_items)  # too few columns to prune: all of them
        np.testing.assert_array_equal(fast.kth, full.kth, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(fast.next_kth, full.next_kth, err_msg=f"trial {trial}")
        pruned += _contenders(scores, mask, k, shortlist) is not None
    assert pruned > 20  # the pruned path ran, not only the fallback


def sum_tower(vectors: np.ndarray, history: list[int]) -> Callable[[Sequence[frozenset[int]]], np.ndarray]:
    """A planted tower: the unit sum of the kept history items' vectors."""

    def encode(removed_sets: Sequence[frozenset[int]]) -> np.ndarray:
        out = np.zeros((len(removed_sets), vectors.shape[1]), dtype=np.float32)
        for r, removed in enumerate(removed_sets):
            kept = [i for i in history if i not in removed]
            if kept:
                total = vectors[kept].sum(axis=0)
                out[r] = total / np.linalg.norm(total)
        return out

    return encode


def test_scoring_only_the_contending_columns_gives_the_full_attributions() -> None:
    # A planted sum-pooled tower over many items: the attributions with the column bound equal
    # those scored over every column (a bound too large to prune anything forces that path).
    rng = np.random.default_rng(5)
    pruned = 0
    for trial in range(30):
        n_items, dim = int(rng.integers(200, 600)), int(rng.choice([8, 32]))
        vectors = rng.normal(size=(n_items, dim)).astype(np.float32)
        if trial % 2:  # unit item vectors, as bundles have
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        history = [int(i) for i in rng.choice(n_items, size=int(rng.integers(5, 80)), replace=False)]

        tower = sum_tower(vectors, history)
        mask = np.ones(n_items, dtype=bool)
        mask[history] = False
        scores = tower([frozenset()])[0] @ vectors.T
        k = int(rng.integers(1, 11))
        served = [int(i) for i in np.argsort(-np.where(mask, scores, -np.inf))[:k]]
        bound = float(np.linalg.norm(vectors, axis=1).max())
        fast = attribute(tower, history, served, vectors, mask, k, norm_bound=bound)
        full = attribute(tower, history, served, vectors, mask, k, norm_bound=1e6)
        for a, b in zip(fast, full, strict=True):
            assert a.necessary == b.necessary, f"trial {trial}"
            np.testing.assert_allclose(a.effects, b.effects, atol=1e-5)
        scorer = _RemovalScores(tower([frozenset()])[0], vectors, mask, k, served, bound)
        _, column = scorer.score(tower([frozenset({h}) for h in history]))
        pruned += int((column < 0).any())
    assert pruned >= 8  # the pruned path ran, not only the full one
