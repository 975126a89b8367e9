"""Softmax losses over sampled candidates, with the logQ correction of Yi et al. (2019).

With in-batch negatives an item appears as a candidate in proportion to its popularity, so an
uncorrected softmax pushes popular items down far more often than rare ones. Subtracting
log(expected count of the candidate in the sample) from its logit makes the sampled softmax an
unbiased-in-the-limit estimate of the full one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sampled_softmax_loss(
    users: Tensor,
    positives: Tensor,
    positive_idx: Tensor,
    inv_temperature: Tensor,
    positive_log_q: Tensor | None = None,
    negatives: Tensor | None = None,
    negative_idx: Tensor | None = None,
    negative_log_q: Tensor | None = None,
    in_batch: bool = True,
    row_weights: Tensor | None = None,
) -> Tensor:
    """Mean cross-entropy of each user's positive against in-batch and/or extra negatives.

    users, positives: [B, d] (L2-normalised); positive_idx: [B] item indices.
    negatives: [N, d] shared by all rows, negative_idx: [N]. `*_log_q` are the logQ terms of
    each candidate column (None = no correction). A candidate equal to a row's own positive
    (an "accidental hit") is masked out rather than counted as a negative. `row_weights` [B]
    weight each row's loss (None = plain mean).
    """
    batch = users.shape[0]
    if in_batch:
        logits = users @ positives.T * inv_temperature  # [B, B], label = diagonal
        if positive_log_q is not None:
            logits = logits - positive_log_q.unsqueeze(0)
        same = positive_idx.unsqueeze(1) == positive_idx.unsqueeze(0)
        diagonal = torch.eye(batch, dtype=torch.bool, device=users.device)
        logits = logits.masked_fill(same & ~diagonal, float("-inf"))
        labels = torch.arange(batch, device=users.device)
    else:
        logits = (users * positives).sum(dim=1, keepdim=True) * inv_temperature  # [B, 1], label 0
        if positive_log_q is not None:
            logits = logits - positive_log_q.unsqueeze(1)
        labels = torch.zeros(batch, dtype=torch.long, device=users.device)
    if negatives is not None and negatives.shape[0] > 0:
        if negative_idx is None:
            raise ValueError("negative_idx is required with negatives")
        extra = users @ negatives.T * inv_temperature  # [B, N]
        if negative_log_q is not None:
            extra = extra - negative_log_q.unsqueeze(0)
        extra = extra.masked_fill(positive_idx.unsqueeze(1) == negative_idx.unsqueeze(0), float("-inf"))
        logits = torch.cat([logits, extra], dim=1)
    return weighted_mean(F.cross_entropy(logits.float(), labels, reduction="none"), row_weights)


def full_softmax_loss(
    users: Tensor,
    all_items: Tensor,
    positive_idx: Tensor,
    inv_temperature: Tensor,
    row_weights: Tensor | None = None,
) -> Tensor:
    """Exact softmax over the whole catalogue (no sampling, so no correction needed)."""
    logits = users @ all_items.T * inv_temperature
    return weighted_mean(F.cross_entropy(logits.float(), positive_idx, reduction="none"), row_weights)


def weighted_mean(losses: Tensor, weights: Tensor | None) -> Tensor:
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp(min=1e-12)
