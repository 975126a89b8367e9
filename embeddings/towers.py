"""The two towers: plain PyTorch modules used by training and, for inference, by serving.

    model = TwoTowerModel(TwoTowerConfig(...), item_features)
    users = model.encode_users(UserBatch(...))      # [B, dim], L2-normalised
    items = model.encode_items(torch.arange(n))     # [n, dim], L2-normalised
    scores = users @ items.T                        # cosine: ranks as the model scores

Training's logits are `user_logit_vectors(...) @ item_logit_vectors(...).T / temperature`. With
`similarity="cosine"` those are the unit vectors above. With `similarity="dot"` they are the raw
tower outputs (dim - 1 wide; their lengths carry popularity and confidence) and the unit vectors
are made from them so that cosine ranks exactly as the inner product does: an item becomes
[v, sqrt(M^2 - |v|^2)] / M with M the catalogue's largest |v| (`item_norm_bound`, refreshed by
`all_item_vectors`), a user [u, 0] / |u| (Bachrach et al. 2014, MIPS as nearest neighbours).

Static item content (category multi-hot, price bucket, text embedding) lives in buffers, so
an item is encoded from its index alone. Serving rebuilds the model from `TwoTowerConfig`
(JSON) and a safetensors state dict: no Lightning, no pickle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class TwoTowerConfig:
    n_users: int  # known users; index 0 is reserved for "no id"
    n_items: int
    n_categories: int
    n_price_buckets: int
    text_dim: int
    profile_cardinalities: list[int] = field(default_factory=list)
    dim: int = 64
    hidden: int = 256
    id_dim: int = 64
    dropout: float = 0.1
    use_user_id: bool = True
    use_item_id: bool = True
    use_content: bool = True
    use_profile: bool = True
    use_history: bool = True
    history_pooling: Literal["mean", "attention"] = "mean"
    # The user tower also pools its own per-item embedding of the history (as in a
    # bag-of-items autoencoder), not only the item tower's vectors.
    history_item_embedding: bool = False
    # How the own-embedding history is pooled: "mean", or "sqrt" (sum / sqrt(length), which
    # keeps how much a user has seen, as the L2-normalised multi-hot input of Mult-DAE does).
    history_item_norm: Literal["mean", "sqrt"] = "mean"
    # Whether the user tower also pools the item tower's own vectors of the history; with a
    # separate history embedding this tie can be dropped (the input and output spaces differ).
    history_tied: bool = True
    # The item vector's last coordinate is a learned per-item scalar (a popularity bias that
    # survives L2 normalisation); vectors keep `dim` coordinates either way.
    item_bias: bool = False
    user_id_dropout: float = 0.2
    temperature: float = 0.05
    learn_temperature: bool = True
    # "cosine": training scores unit vectors; "dot": raw inner products (see the module's docstring).
    similarity: Literal["cosine", "dot"] = "cosine"
    # A full-width linear path: the item-id embedding, as wide as the logit vectors, adds onto the
    # item MLP's output; the own history embedding (pooled) is the whole vector of a user with a
    # history, and the user MLP (profile, interests, id) that of a user without one. Without
    # content this is a linear denoising autoencoder with a profile model for new users.
    wide: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ItemFeatures:
    """Static per-item inputs of the item tower, aligned with item indices."""

    categories: Tensor  # [n_items, n_categories] float multi-hot
    price_bucket: Tensor  # [n_items] long, 0 = unknown
    text: Tensor  # [n_items, text_dim] float (sentence embedding), zeros when absent


@dataclass
class UserBatch:
    """Inputs of the user tower for B users. Any part may be all-zero (cold start, no id)."""

    user_idx: Tensor  # [B] long, 0 = unknown / no id
    profile: Tensor  # [B, F] long, 0 = unknown per field
    interests: Tensor  # [B, n_categories] float, normalised multi-hot (or zeros)
    history: Tensor  # [B, L] long item indices (padding entries are masked)
    history_mask: Tensor  # [B, L] bool, True where history holds a real item

    def to(self, device: torch.device | str) -> UserBatch:
        return UserBatch(
            *(
                t.to(device)
                for t in (self.user_idx, self.profile, self.interests, self.history, self.history_mask)
            )
        )


def _mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
    )


# Above this catalogue size a [B, n_items] weight matrix costs more than gathering rows.
_DENSE_POOL_MAX_ROWS = 50_000


def _masked_sum(history: Tensor, mask: Tensor, table: Tensor) -> tuple[Tensor, Tensor]:
    """Per history: the sum of `table` rows over its masked entries [B, d] and their count [B, 1].
    Via a [B, n_rows] weight matrix: one matrix product instead of a [B, L, d] gather, so long
    histories cost little."""
    if table.shape[0] > _DENSE_POOL_MAX_ROWS:
        m = mask.to(table.dtype).unsqueeze(-1)
        return (table[history] * m).sum(dim=1), m.sum(dim=1)
    weights = torch.zeros((history.shape[0], table.shape[0]), dtype=table.dtype, device=table.device)
    weights.scatter_add_(1, history, mask.to(table.dtype))
    return weights @ table, weights.sum(dim=1, keepdim=True)


def _mean_pool(
    history: Tensor, mask: Tensor, table: Tensor, norm: Literal["mean", "sqrt"] = "mean"
) -> Tensor:
    """Masked mean (or sum / sqrt(count)) of `table` rows over each history."""
    total, count = _masked_sum(history, mask, table)
    count = count.clamp(min=1e-6)
    return total / (count.sqrt() if norm == "sqrt" else count)


def interests_from_history(item_categories: Tensor, history: Tensor, mask: Tensor) -> Tensor:
    """[B, n_categories] category distribution of each masked history (zeros when empty).

    Category rows are 0/1, so the counts are whole numbers: exact in float32 whatever the order
    of summation. Autocast is off so that mixed-precision training does not round them."""
    with torch.autocast(history.device.type, enabled=False):
        counts, _ = _masked_sum(history, mask, item_categories.float())
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1e-6)


class TowerSettings(Protocol):
    """The settings `settings_problem` reads: TwoTowerConfig and the training config's model section."""

    dim: int
    use_item_id: bool
    use_content: bool
    use_history: bool
    history_item_embedding: bool
    history_tied: bool
    similarity: Literal["cosine", "dot"]
    wide: bool


def settings_problem(c: TowerSettings) -> str | None:
    """What makes these tower settings unbuildable, or None: one rule set for the model and for
    the config reader (which reports it with the file and key)."""
    if not (c.use_item_id or c.use_content):
        return "the item tower needs use_item_id or use_content"
    if c.similarity == "dot" and c.use_history and c.history_tied:
        # The tied pool would average unit retrieval vectors in serving but raw ones in training.
        return "similarity dot needs history_tied false"
    if c.similarity == "dot" and c.dim < 3:
        return "similarity dot needs dim >= 3 (one coordinate makes the vectors unit length)"
    if c.wide and not (c.use_history and c.history_item_embedding and c.use_item_id):
        return "wide needs use_history, history_item_embedding and use_item_id"
    return None


class TwoTowerModel(nn.Module):
    item_categories: Tensor
    item_price_bucket: Tensor
    item_text: Tensor
    item_norm_bound: Tensor  # similarity="dot" only: the catalogue's largest logit-vector length

    def __init__(self, config: TwoTowerConfig, item_features: ItemFeatures) -> None:
        super().__init__()
        self.config = c = config
        problem = settings_problem(c)
        if problem is not None:
            raise ValueError(problem)
        # Width of the vectors whose inner product is the training logit.
        logit_dim = c.dim - 1 if c.similarity == "dot" else c.dim
        item_out = logit_dim - 1 if c.item_bias else logit_dim
        if c.similarity == "dot":
            self.register_buffer("item_norm_bound", torch.ones(()))
        self.register_buffer("item_categories", item_features.categories.float())
        self.register_buffer("item_price_bucket", item_features.price_bucket.long())
        self.register_buffer("item_text", item_features.text.float())

        # Item tower.
        item_in = 0
        if c.use_item_id:
            self.item_id = nn.Embedding(c.n_items, item_out if c.wide else c.id_dim)
            nn.init.normal_(self.item_id.weight, std=0.01 if c.wide else 0.05)
            item_in += 0 if c.wide else c.id_dim
        if c.use_content:
            self.item_category = nn.Linear(c.n_categories, c.id_dim, bias=False)
            self.item_price = nn.Embedding(c.n_price_buckets, c.id_dim // 4)
            item_in += c.id_dim + c.id_dim // 4
            if c.text_dim > 0:
                self.item_text_proj = nn.Linear(c.text_dim, c.id_dim)
                item_in += c.id_dim
        # With item_bias the last coordinate is a learned per-item scalar: unit-length vectors
        # leave no norm to carry popularity, so it gets a coordinate of its own.
        # Wide towers without content have nothing for the item MLP (the id embedding is the vector).
        self.item_mlp = _mlp(item_in, c.hidden, item_out, c.dropout) if item_in else None
        if c.item_bias:
            self.item_bias = nn.Embedding(c.n_items, 1)
            nn.init.zeros_(self.item_bias.weight)

        # User tower.
        user_in = 0
        if c.use_user_id:
            self.user_id = nn.Embedding(c.n_users + 1, c.id_dim, padding_idx=0)
            nn.init.normal_(self.user_id.weight, std=0.05)
            user_in += c.id_dim
        if c.use_profile and c.profile_cardinalities:
            self.profile_embeddings = nn.ModuleList(
                nn.Embedding(card, c.id_dim // 2, padding_idx=0) for card in c.profile_cardinalities
            )
            user_in += c.id_dim // 2
        if c.use_profile:
            self.interest_proj = nn.Linear(c.n_categories, c.id_dim, bias=False)
            user_in += c.id_dim
        if c.use_history:
            if not c.history_tied and not c.history_item_embedding:
                raise ValueError("history_tied=False needs history_item_embedding=True")
            if c.history_tied:
                if c.history_pooling == "attention":
                    self.history_query = nn.Parameter(torch.randn(c.dim) * 0.05)
                user_in += c.dim
            if c.history_item_embedding:
                self.history_item = nn.Embedding(c.n_items, logit_dim if c.wide else c.id_dim)
                nn.init.normal_(self.history_item.weight, std=0.01 if c.wide else 0.05)
                user_in += 0 if c.wide else c.id_dim
        if user_in == 0 and not c.wide:
            raise ValueError("TwoTowerConfig enables no user features")
        self.user_mlp = _mlp(user_in, c.hidden, logit_dim, c.dropout) if user_in else None

        init_scale = math.log(1.0 / c.temperature)
        self.log_inv_temperature = nn.Parameter(torch.tensor(init_scale), requires_grad=c.learn_temperature)

    @property
    def temperature(self) -> Tensor:
        # Clamped so a learned temperature cannot collapse the softmax.
        return torch.exp(-self.log_inv_temperature.clamp(max=math.log(100.0)))

    def item_logit_vectors(self, item_idx: Tensor) -> Tensor:
        """[n, logit dim]: the item side of training's logits (unit length for cosine)."""
        c = self.config
        parts: list[Tensor] = []
        if c.use_item_id and not c.wide:
            parts.append(self.item_id(item_idx))
        if c.use_content:
            parts.append(self.item_category(self.item_categories[item_idx]))
            parts.append(self.item_price(self.item_price_bucket[item_idx]))
            if c.text_dim > 0:
                parts.append(self.item_text_proj(self.item_text[item_idx]))
        out = self.item_mlp(torch.cat(parts, dim=-1)) if self.item_mlp is not None else None
        if c.wide:
            wide = self.item_id(item_idx)
            out = wide if out is None else out + wide
        assert out is not None
        if c.item_bias:
            out = torch.cat([out, self.item_bias(item_idx)], dim=-1)
        return F.normalize(out, dim=-1) if c.similarity == "cosine" else out

    def encode_items(self, item_idx: Tensor) -> Tensor:
        """[n, dim] L2-normalised retrieval vectors (cosine with a user ranks as the model does)."""
        out = self.item_logit_vectors(item_idx)
        return out if self.config.similarity == "cosine" else self.unit_items(out)

    def unit_items(self, logit_vectors: Tensor) -> Tensor:
        """Dot-similarity item vectors made unit length against `item_norm_bound`."""
        bound = self.item_norm_bound.to(logit_vectors.dtype)
        squared = (logit_vectors * logit_vectors).sum(dim=-1, keepdim=True)
        rest = (bound * bound - squared).clamp(min=0.0).sqrt()
        return F.normalize(torch.cat([logit_vectors, rest], dim=-1), dim=-1)

    def pool_history(
        self,
        history: Tensor,
        mask: Tensor,
        vectors: Tensor | None = None,
        item_vectors: Tensor | None = None,
    ) -> Tensor:
        """Pool the item-tower vectors of each user's history ([B, L] -> [B, dim]).

        Callers that already hold vectors pass them: `vectors` [B, L, dim] for the history
        entries, or `item_vectors` [n_items, dim] for the whole catalogue (then mean pooling is
        one [B, n_items] @ [n_items, dim] product, whatever the history length).
        """
        batch, length = history.shape
        if length == 0:
            return history.new_zeros((batch, self.config.dim), dtype=torch.float)
        if self.config.history_pooling == "mean" and item_vectors is not None:
            return _mean_pool(history, mask, item_vectors)
        if vectors is None:
            vectors = (
                item_vectors[history]
                if item_vectors is not None
                else self.encode_items(history.reshape(-1)).reshape(batch, length, -1)
            )
        weights = mask.float()
        if self.config.history_pooling == "attention":
            logits = (vectors @ self.history_query) / math.sqrt(self.config.dim)
            logits = logits.masked_fill(~mask, float("-inf"))
            weights = torch.nan_to_num(torch.softmax(logits, dim=-1)) * weights
        denom = weights.sum(dim=1, keepdim=True).clamp(min=1e-6)
        return (vectors * weights.unsqueeze(-1)).sum(dim=1) / denom

    def encode_users(
        self, batch: UserBatch, history_vectors: Tensor | None = None, item_vectors: Tensor | None = None
    ) -> Tensor:
        """[B, dim] L2-normalised user vectors (see `user_logit_vectors` for the arguments)."""
        out = self.user_logit_vectors(batch, history_vectors, item_vectors)
        if self.config.similarity == "cosine":
            return out
        return F.normalize(torch.cat([out, out.new_zeros((out.shape[0], 1))], dim=-1), dim=-1)

    def user_logit_vectors(
        self, batch: UserBatch, history_vectors: Tensor | None = None, item_vectors: Tensor | None = None
    ) -> Tensor:
        """[B, logit dim]: the user side of training's logits (unit length for cosine).
        `history_vectors` / `item_vectors` are optional precomputed item-tower outputs (see
        `pool_history`); without them the history items go through the item tower here. Serving
        runs this pass in numpy (embeddings/numpy_tower.py): change both;
        tests/embeddings/test_numpy_tower.py compares them."""
        c = self.config
        parts: list[Tensor] = []
        if c.use_user_id:
            user_idx = batch.user_idx
            if self.training and c.user_id_dropout > 0:
                # Id dropout teaches the tower to work from profile and history alone.
                keep = torch.rand(user_idx.shape, device=user_idx.device) >= c.user_id_dropout
                user_idx = user_idx * keep
            parts.append(self.user_id(user_idx))
        if c.use_profile and c.profile_cardinalities:
            emb = [e(batch.profile[:, i]) for i, e in enumerate(self.profile_embeddings)]
            parts.append(torch.stack(emb, dim=0).sum(dim=0))
        if c.use_profile:
            parts.append(self.interest_proj(batch.interests))
        if c.use_history:
            if c.history_tied:
                parts.append(
                    self.pool_history(batch.history, batch.history_mask, history_vectors, item_vectors)
                )
            if c.history_item_embedding and not c.wide:
                parts.append(self._own_history_pool(batch))
        out = self.user_mlp(torch.cat(parts, dim=-1)) if self.user_mlp is not None else None
        if c.wide:
            # A user with any history is the wide path alone; the MLP (profile, interests, id)
            # speaks only for users without one, and so trains only on those rows (the
            # profile-only rows). Added to every user, gated or not, it crowded out the history
            # embedding on MovieLens-100K (docs/benchmarks.md, round thirteen).
            wide = self._own_history_pool(batch)
            if out is not None:
                wide = torch.where(batch.history_mask.any(dim=1, keepdim=True), wide, out)
            out = wide
        assert out is not None
        return F.normalize(out, dim=-1) if c.similarity == "cosine" else out

    def _own_history_pool(self, batch: UserBatch) -> Tensor:
        return _mean_pool(
            batch.history, batch.history_mask, self.history_item.weight, self.config.history_item_norm
        )

    @torch.no_grad()
    def all_item_vectors(self, chunk: int = 8192) -> Tensor:
        was_training = self.training
        self.eval()
        n = self.config.n_items
        device = self.item_categories.device
        out = torch.cat(
            [
                self.item_logit_vectors(torch.arange(s, min(n, s + chunk), device=device))
                for s in range(0, n, chunk)
            ]
        )
        if self.config.similarity == "dot":
            # The bound of the whole catalogue, so that every item's vector is unit length.
            self.item_norm_bound.fill_(float(out.float().norm(dim=-1).max().clamp(min=1e-12)))
            out = self.unit_items(out)
        self.train(was_training)
        return out
