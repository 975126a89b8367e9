"""Full-ranking top-K metrics, vectorised with torch and batched over users.

Every model goes through `evaluate_recommender`: it scores all items, the harness masks the
user's already-known items (training positives, plus validation positives when testing), takes
the top K itself and compares with the held-out positives. Only users with at least one
held-out positive are evaluated; per-user values are averaged over them.

Definitions (rel_i = 1 when the item at rank i is held out for the user, R = #held-out items):
  precision@K = sum rel_i / K              recall@K = sum rel_i / R
  f1@K        = per-user 2PR / (P + R)     hitrate@K = 1 if any rel_i
  ndcg@K      = sum rel_i / log2(i + 1) divided by the same sum for an ideal list of min(R, K) hits
  map@K       = sum_i rel_i * precision@i / min(R, K)
  mrr@K       = 1 / rank of the first hit within the top K (0 without a hit)
  coverage@K  = share of catalogue items that appear in anyone's top K (a catalogue, not user, figure)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from training.evaluation.recommender import Recommender

DEFAULT_KS = (10, 20)
PER_USER_METRICS = ("recall", "ndcg", "precision", "map", "hitrate", "mrr", "f1")


def mask_known(scores: torch.Tensor, known: sp.csr_matrix) -> torch.Tensor:
    """Set the scores of each row's known items to -inf (in place); `known` has one row per score row."""
    coo = known.tocoo()
    if coo.nnz:
        rows = torch.from_numpy(coo.row.astype(np.int64))
        cols = torch.from_numpy(coo.col.astype(np.int64))
        scores[rows, cols] = float("-inf")
    return scores


def top_k(scores: torch.Tensor, known: sp.csr_matrix, k: int) -> torch.Tensor:
    """Indices [B, k] of the best unmasked items per row, best first."""
    if torch.isnan(scores).any():
        raise ValueError("a model returned NaN scores")
    masked = mask_known(scores.to(torch.float32).clone(), known)
    return torch.topk(masked, k=min(k, masked.shape[1]), dim=1).indices


def per_user_metrics(top: torch.Tensor, targets: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-user metric values from ranked item ids `top` [B, >= max(ks)] and bool targets [B, n_items].

    Every row of `targets` must hold at least one target (callers evaluate only such users).
    """
    hits = torch.gather(targets, 1, top).to(torch.float64)  # [B, Kmax]
    n_relevant = targets.sum(dim=1).to(torch.float64)  # [B], > 0 for evaluated users
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64)
    discounts = 1.0 / torch.log2(ranks + 1.0)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        h = hits[:, :k]
        n_hits = h.sum(dim=1)
        precision = n_hits / k
        recall = n_hits / n_relevant
        ideal_len = torch.clamp(n_relevant, max=k).long()
        ideal = torch.cumsum(discounts[:k], dim=0)[ideal_len - 1]
        precision_at_i = torch.cumsum(h, dim=1) / ranks[:k]
        first_hit = torch.where(h.any(dim=1), h.argmax(dim=1).to(torch.float64) + 1.0, torch.inf)
        denominator = precision + recall
        out[f"precision@{k}"] = precision
        out[f"recall@{k}"] = recall
        out[f"f1@{k}"] = torch.where(denominator > 0, 2 * precision * recall / denominator, 0.0)
        out[f"ndcg@{k}"] = (h * discounts[:k]).sum(dim=1) / ideal
        out[f"map@{k}"] = (h * precision_at_i).sum(dim=1) / torch.clamp(n_relevant, max=k)
        out[f"hitrate@{k}"] = (n_hits > 0).to(torch.float64)
        out[f"mrr@{k}"] = 1.0 / first_hit
    return out


def evaluate_recommender(
    model: Recommender,
    targets: sp.csr_matrix,
    known: sp.csr_matrix,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 512,
    progress: bool = False,
) -> dict[str, float]:
    """Average metrics over users with held-out items in `targets` [n_users, n_items].

    `known` (same shape) holds the items to exclude from each user's ranking.
    """
    if targets.shape != known.shape:
        raise ValueError(f"targets {targets.shape} and known {known.shape} differ in shape")
    targets = sp.csr_matrix(targets)
    known = sp.csr_matrix(known)
    users = np.flatnonzero(np.diff(targets.indptr) > 0)
    if users.size == 0:
        raise ValueError("no user has a held-out item to evaluate")
    n_items = targets.shape[1]
    k_max = max(ks)
    sums: dict[str, float] = {}
    recommended = {k: torch.zeros(n_items, dtype=torch.bool) for k in ks}
    batches = range(0, users.size, batch_size)
    for start in tqdm(batches, desc="ranking", unit="batch", disable=not progress, leave=False):
        batch = users[start : start + batch_size]
        with torch.no_grad():
            scores = model.score(batch)
        if tuple(scores.shape) != (batch.size, n_items):
            raise ValueError(
                f"score() returned shape {tuple(scores.shape)}, expected {(batch.size, n_items)}"
            )
        top = top_k(scores, known[batch], k_max)
        batch_targets = torch.from_numpy(targets[batch].toarray() > 0)
        for name, values in per_user_metrics(top, batch_targets, ks).items():
            sums[name] = sums.get(name, 0.0) + float(values.sum())
        for k in ks:
            recommended[k][top[:, :k].reshape(-1)] = True
    metrics = {name: total / users.size for name, total in sums.items()}
    for k in ks:
        metrics[f"coverage@{k}"] = float(recommended[k].sum()) / n_items
    return dict(sorted(metrics.items()))
