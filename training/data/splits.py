"""Train/validation/test splits of the positive interactions, deterministic by seed.

    random       per user, 80/10/10 of their positives (shuffled by seed)
    temporal     per user, leave-last-one-out: last positive = test, second last = validation
    global-time  one cut by date for everyone: the last `test_frac` of time is test, the
                 `valid_frac` before it validation; evaluated users need training history
    cold-start   a fraction of users held out entirely (`cold_users`); only their profile is known

Invariants (tested): the three frames are disjoint, nothing evaluated appears in the same
user's training rows, and every evaluated user has training history except in cold-start.
Users with fewer than 3 positives stay entirely in train under random and temporal, since
they cannot give train, validation and test one row each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from explainrec.errors import ConfigError, DataError
from training.data.implicit import PositiveRule, positives
from training.data.schema import Dataset

Protocol = Literal["random", "temporal", "global-time", "cold-start"]
PROTOCOLS: tuple[str, ...] = ("random", "temporal", "global-time", "cold-start")
MIN_EVAL_POSITIVES = 3


@dataclass
class Split:
    """Positive interactions (user_id, item_id, timestamp, weight) per part."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    cold_users: list[str]
    protocol: str = ""
    seed: int = 0
    # Counts a person may want to see, e.g. rows dropped because their user had no history.
    info: dict[str, Any] = field(default_factory=dict)


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["user_id", "item_id", "timestamp", "weight"]
    return frame[cols].sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)


def _per_user_rank(pos: pd.DataFrame, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each row within its user when rows are taken in `order`, and that user's row count."""
    ordered = pos.iloc[order]
    by_user = ordered.groupby("user_id", sort=False, observed=True)
    rank = np.empty(len(pos), dtype=np.int64)
    size = np.empty(len(pos), dtype=np.int64)
    rank[order] = by_user.cumcount().to_numpy()
    size[order] = by_user["item_id"].transform("size").to_numpy()
    return rank, size


def _split_random(pos: pd.DataFrame, seed: int, valid_frac: float, test_frac: float) -> Split:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pos))
    rank, size = _per_user_rank(pos, order)
    eligible = size >= MIN_EVAL_POSITIVES
    n_test = np.where(eligible, np.maximum(1, np.rint(size * test_frac)), 0)
    n_valid = np.where(eligible, np.maximum(1, np.rint(size * valid_frac)), 0)
    # Never leave a user without training rows, however large the fractions.
    n_test = np.minimum(n_test, np.maximum(size - 2, 0))
    n_valid = np.minimum(n_valid, np.maximum(size - 1 - n_test, 0))
    is_test = rank < n_test
    is_valid = ~is_test & (rank < n_test + n_valid)
    is_train = ~is_test & ~is_valid
    return Split(_finish(pos[is_train]), _finish(pos[is_valid]), _finish(pos[is_test]), [])


def _split_temporal(pos: pd.DataFrame) -> Split:
    # Ties in time are broken by item id so the split does not depend on input order.
    order = np.lexsort((pos["item_id"].to_numpy(), pos["timestamp"].to_numpy(), pos["user_id"].to_numpy()))
    rank, size = _per_user_rank(pos, order)
    from_end = size - 1 - rank
    eligible = size >= MIN_EVAL_POSITIVES
    is_test = eligible & (from_end == 0)
    is_valid = eligible & (from_end == 1)
    is_train = ~is_test & ~is_valid
    return Split(_finish(pos[is_train]), _finish(pos[is_valid]), _finish(pos[is_test]), [])


def _cut(explicit: Any, ts: pd.Series, quantile: float) -> pd.Timestamp:
    """An explicit date (naive dates are UTC), else the timestamp quantile."""
    if explicit is None:
        return pd.Timestamp(ts.quantile(quantile))  # type: ignore[arg-type]
    try:
        cut = pd.Timestamp(explicit)
    except (ValueError, TypeError):
        raise ConfigError(f"global-time split: {explicit!r} is not a date (e.g. 2025-05-01)") from None
    return cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")


def _split_global_time(
    pos: pd.DataFrame, valid_frac: float, test_frac: float, valid_start: Any = None, test_start: Any = None
) -> Split:
    ts = pos["timestamp"]
    t_valid = _cut(valid_start, ts, 1 - valid_frac - test_frac)
    t_test = _cut(test_start, ts, 1 - test_frac)
    if t_test < t_valid:
        raise ConfigError(f"global-time split: test_start {t_test} is before valid_start {t_valid}")
    train = pos[ts < t_valid]
    known = set(train["user_id"])
    valid = pos[(ts >= t_valid) & (ts < t_test)]
    test = pos[ts >= t_test]
    # A user first seen after the cut has no history to evaluate from; that is cold-start's job.
    valid_kept = valid[valid["user_id"].isin(known)]
    test_kept = test[test["user_id"].isin(known)]
    info = {
        "valid_start": str(t_valid),
        "test_start": str(t_test),
        "dropped_valid_rows_without_history": len(valid) - len(valid_kept),
        "dropped_test_rows_without_history": len(test) - len(test_kept),
    }
    return Split(_finish(train), _finish(valid_kept), _finish(test_kept), [], info=info)


def _split_cold_start(pos: pd.DataFrame, seed: int, cold_frac: float) -> Split:
    users = np.array(sorted(pos["user_id"].unique()), dtype=object)
    rng = np.random.default_rng(seed)
    shuffled = users[rng.permutation(len(users))]
    n_cold = round(len(users) * cold_frac)
    n_cold = min(max(n_cold, 2), len(users) - 1)
    valid_users = set(shuffled[: n_cold // 2])
    test_users = set(shuffled[n_cold // 2 : n_cold])
    in_valid = pos["user_id"].isin(valid_users)
    in_test = pos["user_id"].isin(test_users)
    cold = sorted(str(u) for u in valid_users | test_users)
    return Split(_finish(pos[~in_valid & ~in_test]), _finish(pos[in_valid]), _finish(pos[in_test]), cold)


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"split option {name}={value}: expected a fraction between 0 and 1")
    return value


def make_split(ds: Dataset, protocol: Protocol, seed: int = 0, **opts: Any) -> Split:
    """Split `ds`'s positives (per `opts['rule']`, a PositiveRule) by `protocol`.

    Options: valid_frac, test_frac (random, global-time; default 0.1 each), valid_start,
    test_start (global-time dates instead of fractions), cold_frac (cold-start; default 0.2).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown split protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    rule: PositiveRule | None = opts.pop("rule", None)
    valid_frac = _check_fraction("valid_frac", float(opts.pop("valid_frac", 0.1)))
    test_frac = _check_fraction("test_frac", float(opts.pop("test_frac", 0.1)))
    cold_frac = _check_fraction("cold_frac", float(opts.pop("cold_frac", 0.2)))
    valid_start = opts.pop("valid_start", None)
    test_start = opts.pop("test_start", None)
    if opts:
        raise ConfigError(f"unknown split option(s) {sorted(opts)} for protocol {protocol!r}")
    if valid_frac + test_frac >= 1.0:
        raise ConfigError(f"split: valid_frac + test_frac = {valid_frac + test_frac}, expected below 1")

    pos = positives(ds.interactions, rule)
    if pos["user_id"].nunique() < 2:
        raise DataError(
            f"dataset {ds.name!r}: {len(pos)} positive interactions from fewer than 2 users; "
            "nothing to split (check the positive rule, e.g. min_rating)"
        )
    if protocol == "random":
        split = _split_random(pos, seed, valid_frac, test_frac)
    elif protocol == "temporal":
        split = _split_temporal(pos)
    elif protocol == "global-time":
        split = _split_global_time(pos, valid_frac, test_frac, valid_start, test_start)
    else:
        split = _split_cold_start(pos, seed, cold_frac)
    split.protocol = protocol
    split.seed = seed
    split.info.update(
        {
            "train_rows": len(split.train),
            "valid_rows": len(split.valid),
            "test_rows": len(split.test),
            "cold_users": len(split.cold_users),
        }
    )
    return split
