"""The user tower of a trained TwoTowerModel, in eval mode, as plain numpy: serving's encoder.

    tower = NumpyUserTower(model, item_vectors)          # weights copied out once
    vectors = tower.encode_users(user_idx, profile, interests, history, mask)   # [B, dim]

Serving encodes one or two users a request (fold-in, cold start, evidence). There torch's
per-operation overhead is the whole cost: ~40 small operations at 10-50 µs each made one
fold-in ~0.9 ms on a 2-core VM, which the event loop waited for. The same arithmetic on numpy
arrays takes a fraction of that (`explainrec bench fold-in`). It is the forward pass of
`TwoTowerModel.encode_users` with dropout off, line for line, and nothing else: training stays
in torch, and tests/embeddings/test_numpy_tower.py holds the two equal for every model
variant (ids on or off, profile, interests, tied or separate history, mean or attention
pooling, sqrt norm, item bias).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from scipy.special import erf

from embeddings.towers import TwoTowerModel

# As in embeddings/towers.py: above this many table rows a [B, rows] count matrix is too big.
_DENSE_POOL_MAX_ROWS = 50_000
# A gathered history entry costs about as much as this many cells of the count matrix's product
# (BLAS); measured on the evidence's batch shapes, 10-220 histories of 10-220 entries.
GATHER_COST_IN_CELLS = 40


class _Sums:
    """Per-row sums of table rows over histories: `sum` is the one thing a kind of batch does its
    own way; the pooled means and the category distribution follow from it."""

    batch: int
    counts: np.ndarray  # [B, 1] float32: entries in each history

    def sum(self, table: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mean(self, table: np.ndarray, norm: Literal["mean", "sqrt"] = "mean") -> np.ndarray:
        """Masked mean of `table` rows per history, or sum / sqrt(count) (`_mean_pool` in torch)."""
        count = np.maximum(self.counts, np.float32(1e-6))
        return self.sum(table) / (np.sqrt(count) if norm == "sqrt" else count)

    def distribution(self, table: np.ndarray) -> np.ndarray:
        """Each history's row sum of `table` normalised to sum 1 (zeros when empty)."""
        counts = self.sum(table)
        return counts / np.maximum(counts.sum(axis=1, keepdims=True), np.float32(1e-6))


class _HistorySums(_Sums):
    """Which table rows each history adds up, worked out once a batch and used for every table
    the tower pools (category counts, history embeddings, item vectors): numpy's ~2-4 µs per call
    is most of a one-user forward pass."""

    def __init__(self, history: np.ndarray, mask: np.ndarray, rows: int) -> None:
        self.batch = history.shape[0]
        counts = mask.sum(axis=1)
        self.counts = counts[:, None].astype(np.float32)
        self.picked = history[mask]  # row-major: each history's entries together, oldest first
        self.weights: np.ndarray | None = None  # the count matrix, when there are many entries
        self.starts: np.ndarray | None = None  # where each non-empty history's entries start
        self.some = counts > 0  # the histories with any entries
        if self.picked.size * GATHER_COST_IN_CELLS > self.batch * rows and rows <= _DENSE_POOL_MAX_ROWS:
            # Many entries (evidence's dozens of windows): a [B, rows] count matrix and one product
            # per table, as the torch tower's scatter_add; repeats count as often as they occur.
            flat = (np.arange(self.batch)[:, None] * rows + history)[mask]
            self.weights = np.bincount(flat, minlength=self.batch * rows).reshape(self.batch, rows)
            self.weights = self.weights.astype(np.float32)
        elif self.batch > 1:
            self.starts = (np.cumsum(counts) - counts)[self.some]

    def sum(self, table: np.ndarray) -> np.ndarray:
        """[B, d]: each history's sum of `table` rows."""
        if self.weights is not None:
            return self.weights @ table
        if self.starts is None:  # one history: gather its rows and add them (none: zeros)
            return table.take(self.picked, axis=0).sum(axis=0, keepdims=True)
        total = np.zeros((self.batch, table.shape[1]), dtype=table.dtype)
        if self.starts.size:
            total[self.some] = np.add.reduceat(table.take(self.picked, axis=0), self.starts, axis=0)
        return total


class _RemovalSums(_Sums):
    """One history with each of several sets of its positions left out (evidence re-encodes a user
    once per candidate set of cited items): each row is the whole history's sum minus its left-out
    rows, a gather of a few rows instead of a [sets, items] count matrix and its products."""

    def __init__(self, history: np.ndarray, left_out: Sequence[Sequence[int]]) -> None:
        self.history = history
        self.batch = len(left_out)
        sizes = np.fromiter(map(len, left_out), dtype=np.int64, count=self.batch)
        self.counts = (history.size - sizes)[:, None].astype(np.float32)
        positions = np.fromiter(
            itertools.chain.from_iterable(left_out), dtype=np.int64, count=int(sizes.sum())
        )
        self.left_out_items = history[positions]
        self.some = sizes > 0  # the rows with anything left out
        self.starts = (np.cumsum(sizes) - sizes)[self.some]

    def sum(self, table: np.ndarray) -> np.ndarray:
        total = np.tile(table.take(self.history, axis=0).sum(axis=0), (self.batch, 1))
        if self.left_out_items.size:
            total[self.some] -= np.add.reduceat(table.take(self.left_out_items, axis=0), self.starts, axis=0)
            total[self.counts[:, 0] == 0] = 0  # exactly nothing left, not rounding residue
        return total


# From this many values on, torch's vectorised GELU beats scipy's scalar erf loop (several times
# over on an evidence batch of dozens of users); below it torch's per-call overhead costs more than
# the work, so a one-user forward pass stays on scipy.
TORCH_GELU_MIN_VALUES = 2048


def _gelu(x: np.ndarray) -> np.ndarray:
    # torch.nn.GELU() with its default approximate="none": the exact erf form.
    if x.size >= TORCH_GELU_MIN_VALUES and x.dtype == np.float32:
        with torch.no_grad():
            return torch.nn.functional.gelu(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    return (0.5 * x * (1.0 + erf(x * np.float32(1 / math.sqrt(2))))).astype(np.float32, copy=False)


class NumpyUserTower:
    def __init__(self, model: TwoTowerModel, item_vectors: np.ndarray) -> None:
        self.config = c = model.config
        weights = {name: t.detach().cpu().float().numpy().copy() for name, t in model.state_dict().items()}
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.item_categories = weights["item_categories"]
        self.user_id = weights["user_id.weight"] if c.use_user_id else None
        self.profile_tables = (
            [weights[f"profile_embeddings.{i}.weight"] for i in range(len(c.profile_cardinalities))]
            if c.use_profile and c.profile_cardinalities
            else []
        )
        # Linear layers keep [out, in]; stored transposed so each is one `x @ w + b`.
        self.interest_proj = weights["interest_proj.weight"].T.copy() if c.use_profile else None
        self.history_query = (
            weights["history_query"]
            if c.use_history and c.history_tied and c.history_pooling == "attention"
            else None
        )
        self.history_item = (
            weights["history_item.weight"] if c.use_history and c.history_item_embedding else None
        )
        # user_mlp is Linear, GELU, Dropout, Linear (embeddings/towers.py `_mlp`); a wide tower
        # whose history embedding is its only input has none.
        self.mlp = (
            (
                weights["user_mlp.0.weight"].T.copy(),
                weights["user_mlp.0.bias"],
                weights["user_mlp.3.weight"].T.copy(),
                weights["user_mlp.3.bias"],
            )
            if model.user_mlp is not None
            else None
        )

    def encode_users(
        self,
        user_idx: np.ndarray,
        profile: np.ndarray,
        interests: np.ndarray,
        history: np.ndarray,
        mask: np.ndarray,
    ) -> np.ndarray:
        """[B, dim] L2-normalised user vectors from the arrays `UserBatch` holds (int64 indices,
        float32 interests, bool mask). A row of all-zero interests gets its history's category
        distribution, as training built it (`interests_from_history`)."""
        c = self.config
        sums = _HistorySums(history, mask, self.item_vectors.shape[0])
        tied = self._pool_history(history, mask, sums) if c.use_history and c.history_tied else None
        return self._forward(user_idx, profile, interests, sums, history.shape[1] > 0, tied)

    def encode_without(
        self,
        user_index: int,
        profile: np.ndarray,
        interests: np.ndarray,
        history: np.ndarray,
        left_out: Sequence[Sequence[int]],
    ) -> np.ndarray | None:
        """[len(left_out), dim]: one user (profile indices [fields], interests [categories]) with
        the whole `history` [n] as its input, re-encoded once per list of history positions left
        out. Equal to `encode_users` on each shortened history; None for attention pooling, whose
        weights do not subtract (build the shortened histories instead)."""
        c = self.config
        if self.history_query is not None:
            return None
        sums = _RemovalSums(history, left_out)
        batch = sums.batch
        tied = None
        if c.use_history and c.history_tied:
            tied = sums.mean(self.item_vectors) if history.size else np.zeros((batch, c.dim), np.float32)
        return self._forward(
            np.full(batch, user_index, dtype=np.int64),
            np.tile(profile, (batch, 1)),
            np.tile(interests, (batch, 1)),
            sums,
            history.size > 0,
            tied,
        )

    def _forward(
        self,
        user_idx: np.ndarray,
        profile: np.ndarray,
        interests: np.ndarray,
        sums: _Sums,
        any_history: bool,
        tied_pool: np.ndarray | None,
    ) -> np.ndarray:
        c = self.config
        if c.wide and self.history_item is not None:
            out = sums.mean(self.history_item, c.history_item_norm)
            bare = sums.counts[:, 0] == 0
            if self.mlp is not None and bare.any():
                # Only users without history read the MLP (TwoTowerModel.user_logit_vectors), so
                # a batch of users with histories (evidence's removal sets) skips it.
                tied = tied_pool[bare] if tied_pool is not None else None
                out[bare] = self._deep(user_idx[bare], profile[bare], interests[bare], None, tied)
        else:
            out = self._deep(user_idx, profile, interests, sums if any_history else None, tied_pool)
        if c.similarity == "dot":
            # The retrieval coordinate users leave at zero (TwoTowerModel.encode_users).
            out = np.concatenate([out, np.zeros((out.shape[0], 1), np.float32)], axis=1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)

    def _deep(
        self,
        user_idx: np.ndarray,
        profile: np.ndarray,
        interests: np.ndarray,
        sums: _Sums | None,
        tied_pool: np.ndarray | None,
    ) -> np.ndarray:
        """The user MLP's output; `sums` of the histories (None: no row has one)."""
        c = self.config
        assert self.mlp is not None
        parts: list[np.ndarray] = []
        if self.user_id is not None:
            parts.append(self.user_id.take(user_idx, axis=0))
        if self.profile_tables:
            embedded = self.profile_tables[0].take(profile[:, 0], axis=0)
            for i, table in enumerate(self.profile_tables[1:], start=1):
                embedded = embedded + table.take(profile[:, i], axis=0)
            parts.append(embedded)
        if self.interest_proj is not None:
            empty = np.logical_not(interests.any(axis=1))
            if empty.any() and sums is not None:
                interests = np.where(empty[:, None], sums.distribution(self.item_categories), interests)
            parts.append(interests @ self.interest_proj)
        if tied_pool is not None:
            parts.append(tied_pool)
        if self.history_item is not None and not c.wide:
            if sums is not None:
                parts.append(sums.mean(self.history_item, c.history_item_norm))
            else:
                parts.append(np.zeros((len(user_idx), self.history_item.shape[1]), np.float32))
        hidden_w, hidden_b, out_w, out_b = self.mlp
        x = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
        return _gelu(x @ hidden_w + hidden_b) @ out_w + out_b

    def _pool_history(self, history: np.ndarray, mask: np.ndarray, sums: _Sums) -> np.ndarray:
        batch, length = history.shape
        if length == 0:
            return np.zeros((batch, self.config.dim), dtype=np.float32)
        if self.history_query is None:
            return sums.mean(self.item_vectors)
        # Attention pooling: softmax over the real entries; a history with none pools to zeros.
        vectors = self.item_vectors[history]
        logits = (vectors @ self.history_query) / np.float32(math.sqrt(self.config.dim))
        logits = np.where(mask, logits, -np.inf)
        top = np.where(mask.any(axis=1, keepdims=True), logits.max(axis=1, keepdims=True), 0.0)
        scores = np.exp(logits - top) * mask
        total = scores.sum(axis=1, keepdims=True)
        weights = np.divide(scores, total, out=np.zeros_like(scores), where=total > 0).astype(np.float32)
        denom = np.maximum(weights.sum(axis=1, keepdims=True), np.float32(1e-6))
        return (vectors * weights[:, :, None]).sum(axis=1) / denom
