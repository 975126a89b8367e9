"""User vectors at serving time: cold start from a profile form, fold-in from a fresh history.

    encoder = UserEncoder(bundle)
    v = encoder.encode({"age": 31, "gender": "F"}, history_item_ids=[], user_id=None,
                       interests=["Books"])                  # cold start, no id
    v = encoder.encode(profile, history_item_ids=updated, user_id="u42")   # fold-in, no retraining

Inputs are built the way training built them (`training.features`): the most recent
`max_history` items, right-aligned, and interests equal to the history's category
distribution unless the person chose interest categories. One forward pass of the user tower
(in numpy: embeddings/numpy_tower.py) on a batch of one, well under 1 ms on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.numpy_tower import NumpyUserTower
from explainrec.errors import DataError

if TYPE_CHECKING:
    from embeddings.bundle import Bundle


class UserEncoder:
    def __init__(self, bundle: Bundle) -> None:
        self.spec = bundle.feature_spec
        self.model = bundle.model.eval()
        self._n_fields = len(self.spec.profile_fields)
        # The bundle's item vectors are the item tower's outputs: pooling gathers them instead of
        # re-running the item tower on every history item. The forward pass runs in numpy
        # (embeddings/numpy_tower.py): torch's per-operation overhead was most of a fold-in.
        self.tower = NumpyUserTower(self.model, bundle.item_vectors)

    def encode(
        self,
        profile: Mapping[Any, Any] | None,
        history_item_ids: Sequence[str] = (),
        user_id: str | None = None,
        interests: Sequence[str] = (),
    ) -> np.ndarray:
        """The L2-normalised user vector [d] for this profile, history (oldest first) and id.

        An unknown or absent `user_id` encodes without an id (cold start). Unknown item ids
        raise DataError; unknown profile values and interest categories count as "unknown".
        """
        return self.encode_batch([self._batch_row(profile, history_item_ids, user_id, interests)])[0]

    def encode_many(
        self, users: Sequence[tuple[Mapping[Any, Any] | None, Sequence[str], str | None, Sequence[str]]]
    ) -> np.ndarray:
        """Several `encode` calls [(profile, history_item_ids, user_id, interests), ...] in one
        forward pass: [len(users), d]. A batch of two costs little more than one (the per-call
        overhead dominates a single row)."""
        return self.encode_batch([self._batch_row(*user) for user in users])

    def encode_batch(self, rows: Sequence[tuple[list[int], list[int], int, list[float]]]) -> np.ndarray:
        """Encode prepared rows (profile indices, history indices, user index, interests)."""
        length = min(self.spec.max_history, max((len(r[1]) for r in rows), default=0))
        # One preallocated array, each row's list copied into its slice (right-aligned).
        history = np.zeros((len(rows), length), dtype=np.int64)
        lengths = np.zeros(len(rows), dtype=np.int64)
        for b, (_, items, _, _) in enumerate(rows):
            kept = items[-length:] if length else []
            if kept:
                history[b, length - len(kept) :] = kept
                lengths[b] = len(kept)
        return self.encode_arrays(
            np.asarray([r[0] for r in rows], dtype=np.int64).reshape(len(rows), self._n_fields),
            np.asarray([r[2] for r in rows], dtype=np.int64),
            np.asarray([r[3] for r in rows], dtype=np.float32).reshape(len(rows), -1),
            history,
            lengths,
        )

    def encode_arrays(
        self,
        profile: np.ndarray,
        user_idx: np.ndarray,
        interests: np.ndarray,
        history: np.ndarray,
        lengths: np.ndarray,
    ) -> np.ndarray:
        """Encode a batch given as arrays: profile indices [B, fields], user indices [B], interests
        [B, categories] (all zero: derived from the history), history item indices [B, L] with
        each row's `lengths[b]` items right-aligned (oldest first) and zeros before them."""
        length = history.shape[1]
        history = np.ascontiguousarray(history, dtype=np.int64)
        return self.tower.encode_users(
            np.asarray(user_idx, dtype=np.int64),
            np.asarray(profile, dtype=np.int64).reshape(len(history), self._n_fields),
            np.asarray(interests, dtype=np.float32).reshape(len(history), -1),
            history,
            np.arange(length)[None, :] >= (length - np.asarray(lengths))[:, None],
        )

    def encode_without(
        self,
        profile: np.ndarray,
        user_index: int,
        interests: np.ndarray,
        history: np.ndarray,
        left_out: Sequence[Sequence[int]],
    ) -> np.ndarray | None:
        """One user (profile indices [fields], interests [categories], all-zero: derived) whose
        tower input is the whole `history` [n <= max_history], oldest first, re-encoded once per
        list of history positions left out: [len(left_out), d]. Equal to `encode_arrays` on
        each shortened history, without building them; None where the tower cannot do it so
        (attention pooling)."""
        if history.size > self.spec.max_history:
            raise ValueError(f"history of {history.size} items is longer than max_history")
        return self.tower.encode_without(
            int(user_index),
            np.asarray(profile, dtype=np.int64).reshape(self._n_fields),
            np.asarray(interests, dtype=np.float32).reshape(-1),
            np.ascontiguousarray(history, dtype=np.int64),
            left_out,
        )

    def _batch_row(
        self,
        profile: Mapping[Any, Any] | None,
        history_item_ids: Sequence[str],
        user_id: str | None,
        interests: Sequence[str],
    ) -> tuple[list[int], list[int], int, list[float]]:
        if isinstance(history_item_ids, str) or isinstance(interests, str):
            raise DataError("history_item_ids and interests must be lists of strings, not one string")
        items: list[int] = []
        unknown: list[str] = []
        for item_id in history_item_ids:
            idx = self.spec.item_index(str(item_id))
            if idx is None:
                unknown.append(str(item_id))
            else:
                items.append(idx)
        if unknown:
            raise DataError(f"unknown item ids in history: {unknown[:5]}")
        clean = {str(k): v for k, v in (profile or {}).items() if v is not None and v != ""}
        user_idx = self.spec.user_index(user_id) if user_id is not None else 0
        chosen = list(interests)
        interest_vec = self.spec.encode_interests(chosen) if chosen else [0.0] * len(self.spec.categories)
        return self.spec.encode_profile(clean), items, user_idx, interest_vec
