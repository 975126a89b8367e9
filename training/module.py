"""The LightningModule: wraps the towers and owns loss, validation ranking and the optimiser.

A training batch is a tensor of (user index, positive item index) rows. The module turns it
into tower inputs itself, from per-user tables kept as buffers (so they follow the module to
the GPU): the user's history without the target item, randomly thinned, and the category
distribution of what is left as its interests. Validation ranks the whole catalogue for each
validation user, excludes training items, and reports NDCG@k (the checkpoint criterion).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchmetrics import MeanMetric

from embeddings.towers import TwoTowerModel, UserBatch, interests_from_history
from training.evaluation.metrics import per_user_metrics
from training.features import UserTable
from training.loss import full_softmax_loss, sampled_softmax_loss, weighted_mean
from training.train_config import FeatureSection, LossSection, OptimSection

# A profile form asks for a few favourite categories, not a distribution.
FORM_TOP_CATEGORIES = 3
# Where a checkpoint carries the training config that rebuilds it (see training/export.py).
CHECKPOINT_KEY = "explainrec"


def dense_rows(indptr: Tensor, indices: Tensor, rows: Tensor, n_cols: int) -> Tensor:
    """Rows of a CSR boolean matrix as a dense [len(rows), n_cols] bool tensor."""
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    out = torch.zeros((rows.shape[0], n_cols), dtype=torch.bool, device=rows.device)
    total = int(lengths.sum())
    if total == 0:
        return out
    row_of = torch.repeat_interleave(torch.arange(rows.shape[0], device=rows.device), lengths)
    first = torch.repeat_interleave(starts - (torch.cumsum(lengths, 0) - lengths), lengths)
    out[row_of, indices[first + torch.arange(total, device=rows.device)]] = True
    return out


class TwoTowerModule(L.LightningModule):
    user_profile: Tensor
    user_history: Tensor
    user_history_mask: Tensor
    item_log_prob: Tensor
    user_row_weight: Tensor
    known_indptr: Tensor
    known_indices: Tensor
    valid_indptr: Tensor
    valid_indices: Tensor

    def __init__(
        self,
        model: TwoTowerModel,
        users: UserTable,
        item_counts: Tensor,
        known: tuple[Tensor, Tensor],
        valid: tuple[Tensor, Tensor],
        features: FeatureSection,
        loss: LossSection,
        optim: OptimSection,
        val_k: int = 10,
        train_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        # Written into every checkpoint, so `explainrec build` can rebuild a bundle from one.
        self.train_config = train_config
        self.features, self.loss_cfg, self.optim_cfg, self.val_k = features, loss, optim, val_k
        self.register_buffer("user_profile", users.profile)
        self.register_buffer("user_history", users.history)
        self.register_buffer("user_history_mask", users.history_mask)
        probs = item_counts.double() / item_counts.sum().clamp(min=1)
        # Floor for items never seen in training: they can only appear as uniform negatives.
        self.register_buffer("item_log_prob", probs.clamp(min=1e-12).log().float())
        per_user = (known[0][1:] - known[0][:-1]).float().clamp(min=1.0)
        self.register_buffer("user_row_weight", per_user.pow(-loss.user_weight_power))
        self.register_buffer("known_indptr", known[0])
        self.register_buffer("known_indices", known[1])
        self.register_buffer("valid_indptr", valid[0])
        self.register_buffer("valid_indices", valid[1])
        self.val_ndcg = MeanMetric()
        self._val_items: Tensor | None = None

    # -- training --
    def _training_users(self, user_idx: Tensor, target: Tensor) -> UserBatch:
        history = self.user_history[user_idx]
        mask = self.user_history_mask[user_idx] & (history != target.unsqueeze(1))
        if self.features.history_dropout > 0:
            mask = mask & (torch.rand(mask.shape, device=mask.device) >= self.features.history_dropout)
        interests = interests_from_history(self.model.item_categories, history, mask)
        roll = torch.rand(user_idx.shape[0], 1, device=user_idx.device)
        as_form = (roll < self.features.interests_as_form).float()
        dropped = (roll >= 1.0 - self.features.interests_dropout).float()
        interests = (1 - as_form) * interests + as_form * _top_categories(interests, FORM_TOP_CATEGORIES)
        interests = interests * (1 - dropped)
        return UserBatch(user_idx, self.user_profile[user_idx], interests, history, mask)

    def _profile_only(self, users: UserBatch) -> UserBatch:
        """Blank id, history and interests of a random fraction of rows (a new user's inputs)."""
        share = self.features.profile_only_rows
        if share <= 0:
            return users
        blank = torch.rand(users.user_idx.shape[0], device=users.user_idx.device) < share
        return UserBatch(
            users.user_idx * ~blank,
            users.profile,
            users.interests * ~blank.unsqueeze(1),
            users.history,
            users.history_mask & ~blank.unsqueeze(1),
        )

    def _multinomial_step(self, user_idx: Tensor) -> Tensor:
        """One softmax row per user over the whole catalogue, every training positive a target."""
        n_items = self.model.config.n_items
        history = self.user_history[user_idx]
        full = self.user_history_mask[user_idx]
        mask = full
        if self.features.history_dropout > 0:
            mask = full & (torch.rand(full.shape, device=full.device) >= self.features.history_dropout)
        targets = dense_rows(self.known_indptr, self.known_indices, user_idx, n_items).float()
        interests = interests_from_history(self.model.item_categories, history, mask)
        users = self._profile_only(UserBatch(user_idx, self.user_profile[user_idx], interests, history, mask))
        all_items = self.model.item_logit_vectors(torch.arange(n_items, device=self.device))
        user_vecs = self.model.user_logit_vectors(users, item_vectors=all_items)
        log_probs = torch.log_softmax((user_vecs @ all_items.T).float() / self.model.temperature, dim=1)
        targets = emphasised_targets(
            targets, users.history, users.history_mask, self.loss_cfg.kept_target_weight
        )
        counts = targets.sum(dim=1)
        row_loss = -(log_probs * targets).sum(dim=1) / counts.clamp(min=1e-6)
        # As for pairs: power 0 weights a user by its number of targets, 1 weights users equally.
        weights = (counts > 0).float() * counts.clamp(min=1e-6).pow(1.0 - self.loss_cfg.user_weight_power)
        loss = weighted_mean(row_loss, weights)
        self._log_loss(loss, user_idx.shape[0])
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        rows = batch[0] if isinstance(batch, (list, tuple)) else batch
        if self.loss_cfg.objective == "multinomial":
            return self._multinomial_step(rows.reshape(-1))
        pairs = rows
        user_idx, target = pairs[:, 0], pairs[:, 1]
        users = self._profile_only(self._training_users(user_idx, target))
        n_items = self.model.config.n_items
        inv_t = 1.0 / self.model.temperature
        cfg = self.loss_cfg
        weights = self.user_row_weight[user_idx] if cfg.user_weight_power > 0 else None
        negatives = torch.randint(0, n_items, (max(cfg.uniform_negatives, 0),), device=self.device)
        n_b, n_n = target.shape[0], negatives.shape[0]
        if cfg.uniform_negatives < 0 or n_items <= n_b + n_n + users.history.numel():
            # Small catalogue: encoding every item once is cheaper than the batch's lookups.
            all_items = self.model.item_logit_vectors(torch.arange(n_items, device=self.device))
            user_vecs = self.model.user_logit_vectors(users, item_vectors=all_items)
            if cfg.uniform_negatives < 0:
                loss = full_softmax_loss(user_vecs, all_items, target, inv_t, weights)
                self._log_loss(loss, n_b)
                return loss
            positives, negative_vecs = all_items[target], all_items[negatives]
        else:
            # Each distinct item of the batch goes through the item tower once.
            wanted = torch.cat([target, negatives, users.history.reshape(-1)])
            unique, inverse = torch.unique(wanted, return_inverse=True)
            vectors = self.model.item_logit_vectors(unique)[inverse]
            positives, negative_vecs = vectors[:n_b], vectors[n_b : n_b + n_n]
            history_vecs = vectors[n_b + n_n :].reshape(*users.history.shape, -1)
            user_vecs = self.model.user_logit_vectors(users, history_vectors=history_vecs)
        pos_log_q = neg_log_q = None
        if cfg.logq_correction:
            pos_log_q = self.item_log_prob[target] + math.log(n_b)
            neg_log_q = torch.full((n_n,), math.log(max(n_n, 1) / n_items), device=self.device)
        loss = sampled_softmax_loss(
            user_vecs,
            positives,
            target,
            inv_t,
            pos_log_q,
            negative_vecs,
            negatives,
            neg_log_q,
            in_batch=cfg.in_batch_negatives,
            row_weights=weights,
        )
        self._log_loss(loss, n_b)
        return loss

    def _log_loss(self, loss: Tensor, batch_size: int) -> None:
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        self.log("temperature", self.model.temperature.detach(), on_step=False, on_epoch=True)

    # -- validation --
    def on_validation_epoch_start(self) -> None:
        self._val_items = self.model.all_item_vectors()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        user_idx = batch[0] if isinstance(batch, (list, tuple)) else batch
        assert self._val_items is not None
        users = UserBatch(
            user_idx,
            self.user_profile[user_idx],
            interests_from_history(
                self.model.item_categories, self.user_history[user_idx], self.user_history_mask[user_idx]
            ),
            self.user_history[user_idx],
            self.user_history_mask[user_idx],
        )
        scores = (self.model.encode_users(users, item_vectors=self._val_items) @ self._val_items.T).float()
        n_items = scores.shape[1]
        scores = scores.masked_fill(
            dense_rows(self.known_indptr, self.known_indices, user_idx, n_items), float("-inf")
        )
        top = torch.topk(scores, k=min(self.val_k, n_items), dim=1).indices
        targets = dense_rows(self.valid_indptr, self.valid_indices, user_idx, n_items)
        ndcg = per_user_metrics(top.cpu(), targets.cpu(), [self.val_k])[f"ndcg@{self.val_k}"]
        self.val_ndcg.update(ndcg.float().to(self.device))

    def on_validation_epoch_end(self) -> None:
        self.log(f"val_ndcg@{self.val_k}", self.val_ndcg.compute(), prog_bar=True, sync_dist=False)
        self.val_ndcg.reset()
        self._val_items = None

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.optim_cfg.lr, weight_decay=self.optim_cfg.weight_decay
        )
        if self.optim_cfg.lr_decay >= 1.0:
            return optimizer
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.optim_cfg.lr_decay)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        monitor = f"val_ndcg@{self.val_k}"
        score = self.trainer.callback_metrics.get(monitor)
        checkpoint[CHECKPOINT_KEY] = {
            "train_config": self.train_config,
            "metrics": {monitor: float(score)} if score is not None else {},
            "epoch": int(self.current_epoch),
        }


def emphasised_targets(targets: Tensor, history: Tensor, mask: Tensor, kept_weight: float) -> Tensor:
    """[B, n_items] targets with those still in the (masked) input history weighted `kept_weight`.

    Emphasised denoising (Steck 2020): below 1 the loss is mostly about the items dropout hid,
    so the tower learns to predict them rather than to copy what it sees."""
    if kept_weight == 1.0:
        return targets
    kept = torch.zeros_like(targets).scatter_add_(1, history, mask.to(targets.dtype))
    kept = kept.clamp(max=1.0)  # padding adds 0; a repeated item counts once
    return targets * (1.0 - (1.0 - kept_weight) * kept)


def _top_categories(distribution: Tensor, k: int) -> Tensor:
    """Uniform weights over each row's k largest categories (zeros stay zeros)."""
    k = min(k, distribution.shape[1])
    if k == 0:
        return distribution
    top = torch.topk(distribution, k=k, dim=1)
    out = torch.zeros_like(distribution).scatter_(1, top.indices, (top.values > 0).float())
    return out / out.sum(dim=1, keepdim=True).clamp(min=1.0)
