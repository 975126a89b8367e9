"""Read raw files and turn them into canonical tables under the documented policy (docs/data.md).

Errors (DataError naming file, line or column, and what was expected): a missing file, a
missing column, undecodable bytes (wrong encoding), a malformed file, an empty table.
Counted drops (`PrepareReport.drop`, errors in strict mode): rows with a missing or
unparsable id, timestamp or rating, duplicate ids (the first row wins), interactions with
an unknown user or item, exact duplicate interactions, unknown event types.
Counted fixes (`PrepareReport.fix`): an unparsable optional attribute (age, price, year ...)
becomes missing.

Raw frames carry a `_line` column (the line number in the source file, or the row number
of a Parquet file) so every report can point at the offending line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from explainrec.errors import DataError
from training.data.report import PrepareReport, dataset_stats
from training.data.schema import DTYPES, EVENT_TYPES, REQUIRED_COLUMNS, Dataset, coerce_dtypes

LINE = "_line"
TimeUnit = Literal["s", "ms", "us", "ns"]


def _decode_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> DataError:
    """Locate undecodable bytes by line so the person can look at them."""
    line = None
    try:
        with path.open("rb") as fh:
            data = fh.read()
        data.decode(encoding)
    except UnicodeDecodeError as located:
        line = data[: located.start].count(b"\n") + 1
        exc = located
    except OSError:
        pass
    where = f" line {line}," if line is not None else ""
    hint = "latin-1" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else "utf-8"
    return DataError(
        f"{path}:{where} byte 0x{exc.object[exc.start]:02x} is not valid {encoding} text; "
        f"expected {encoding}-encoded text (wrong encoding? try `encoding: {hint}` in the mapping config)"
    )


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected {what}")
    return path


def read_delimited(
    path: Path,
    *,
    sep: str,
    encoding: str,
    names: Sequence[str] | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
    what: str = "a data file",
) -> pd.DataFrame:
    """Read a text table as strings plus `_line`. `names` means the file has no header row."""
    require_file(path, what)
    kwargs = {
        "sep": sep,
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        "quoting": quoting,
        "header": None if names else 0,
        "names": list(names) if names else None,
        "skip_blank_lines": True,
    }
    try:
        if len(sep) > 1:
            # Multi-character separators (MovieLens `::`) would force pandas' slow Python engine;
            # swapping them for a control character keeps the fast C parser.
            text = path.read_bytes().decode(encoding).replace(sep, "\x1f")
            kwargs["sep"] = "\x1f"
            df = pd.read_csv(io.StringIO(text), **kwargs)  # type: ignore[call-overload]
        else:
            df = pd.read_csv(path, encoding=encoding, **kwargs)  # type: ignore[call-overload]
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding, exc) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected {what}") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed, expected {what} separated by {sep!r}: {exc}".strip()) from None
    df.columns = [str(c).strip() for c in df.columns]
    # Blank lines are skipped, so line numbers assume one record per line (true for these formats).
    df[LINE] = range(1 if names else 2, len(df) + (1 if names else 2))
    return df


def read_parquet_table(path: Path, what: str) -> pd.DataFrame:
    require_file(path, what)
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    df[LINE] = range(1, len(df) + 1)
    return df


def require_columns(df: pd.DataFrame, columns: Iterable[str], file: str, what: str = "") -> None:
    found = [c for c in df.columns if c != LINE]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        extra = f" ({what})" if what else ""
        raise DataError(f"{file}: missing column(s) {missing}{extra}; found columns {found}")


def require_rows(df: pd.DataFrame, file: str, table: str) -> None:
    if df.empty:
        raise DataError(f"{file}: no {table} rows; expected at least one")


def _examples(df: pd.DataFrame, mask: pd.Series, column: str) -> list[str]:
    rows = df.loc[mask, [LINE, column]].head(5)
    return [f"line {line}: {column}={value!r}" for line, value in rows.itertuples(index=False)]


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip() == "")


def clean_ids(
    df: pd.DataFrame, columns: Sequence[str], table: str, file: str, report: PrepareReport
) -> pd.DataFrame:
    """Strip ids; drop rows whose id is missing."""
    for column in columns:
        bad = _blank(df[column])
        report.drop(table, file, f"missing {column}", int(bad.sum()), _examples(df, bad, column))
        df = df.loc[~bad].copy()
        df[column] = df[column].astype(str).str.strip()
    return df


def parse_number(
    df: pd.DataFrame,
    column: str,
    table: str,
    file: str,
    report: PrepareReport,
    *,
    required: bool,
    integer: bool = False,
) -> pd.DataFrame:
    """Parse a numeric column; unparsable -> drop (required) or set missing (optional)."""
    if column not in df.columns:
        return df
    raw = df[column]
    parsed = pd.to_numeric(raw, errors="coerce")
    if integer:
        # 34.0 is a fine age; 34.5 is not an integer and counts as unparsable.
        parsed = parsed.where(parsed.isna() | (parsed == parsed.round()))
    missing = _blank(raw)
    bad = parsed.isna() & ~missing
    kind = "an integer" if integer else "a number"
    if required:
        drop = bad | missing
        report.drop(
            table,
            file,
            f"missing or unparsable {column} (expected {kind})",
            int(drop.sum()),
            _examples(df, drop, column),
        )
        df = df.loc[~drop].copy()
        parsed = parsed[~drop]
    else:
        report.fix(
            table,
            file,
            f"unparsable {column} set to missing (expected {kind})",
            int(bad.sum()),
            _examples(df, bad, column),
        )
    df[column] = parsed.astype("Int64" if integer else "float64")
    return df


def parse_timestamp(
    df: pd.DataFrame,
    column: str,
    table: str,
    file: str,
    report: PrepareReport,
    *,
    unit: TimeUnit | None = None,
    fmt: str | None = None,
) -> pd.DataFrame:
    """Unix epochs (`unit` s/ms/us/ns) or date strings -> UTC; unparsable rows are dropped."""
    raw = df[column]
    if unit is None and fmt is None and len(raw):
        numeric = pd.to_numeric(raw, errors="coerce")
        # A column of plain numbers is an epoch in seconds (MovieLens and most exports).
        if numeric.notna().mean() > 0.99:
            unit = "s"
    if unit is not None:
        numeric = pd.to_numeric(raw, errors="coerce")
        parsed = pd.to_datetime(numeric, unit=unit, utc=True, errors="coerce")
        expected = f"a Unix time in {unit}"
    else:
        parsed = pd.to_datetime(raw, utc=True, errors="coerce", format=fmt or "ISO8601")
        expected = f"a date like {fmt}" if fmt else "an ISO 8601 date/time"
    bad = parsed.isna()
    report.drop(
        table,
        file,
        f"missing or unparsable {column} (expected {expected})",
        int(bad.sum()),
        _examples(df, bad, column),
    )
    df = df.loc[~bad].copy()
    df[column] = parsed[~bad].astype("datetime64[ns, UTC]")
    return df


def drop_duplicate_ids(
    df: pd.DataFrame, column: str, table: str, file: str, report: PrepareReport
) -> pd.DataFrame:
    dup = df[column].duplicated(keep="first")
    report.drop(
        table, file, f"duplicate {column} (the first row is kept)", int(dup.sum()), _examples(df, dup, column)
    )
    return df.loc[~dup]


def check_events(df: pd.DataFrame, file: str, report: PrepareReport) -> pd.DataFrame:
    events = df["event"].astype(str).str.strip().str.lower()
    bad = ~events.isin(EVENT_TYPES)
    report.drop(
        "interactions",
        file,
        f"unknown event type (expected one of {', '.join(EVENT_TYPES)})",
        int(bad.sum()),
        _examples(df, bad, "event"),
    )
    df = df.loc[~bad].copy()
    df["event"] = events[~bad]
    return df


def _canonical_order(df: pd.DataFrame, table: str) -> pd.DataFrame:
    known = [c for c in (*REQUIRED_COLUMNS[table], *DTYPES[table]) if c in df.columns]
    known = list(dict.fromkeys(known))
    return df[known + [c for c in df.columns if c not in known and c != LINE]]


def finalize(
    name: str,
    users: pd.DataFrame | None,
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    files: dict[str, str],
    report: PrepareReport,
) -> Dataset:
    """Referential checks, dedupe, dtypes and stats. `users=None`: derive users from interactions."""
    inter_file = files["interactions"]
    unknown_item = ~interactions["item_id"].isin(items["item_id"])
    report.drop(
        "interactions",
        inter_file,
        f"item_id not in the items table ({files['items']})",
        int(unknown_item.sum()),
        _examples(interactions, unknown_item, "item_id"),
    )
    interactions = interactions.loc[~unknown_item]
    if users is None:
        users = pd.DataFrame({"user_id": sorted(interactions["user_id"].unique())})
        report.note(f"no users table: {len(users)} users derived from the interactions, without profiles")
    else:
        unknown_user = ~interactions["user_id"].isin(users["user_id"])
        report.drop(
            "interactions",
            inter_file,
            f"user_id not in the users table ({files['users']})",
            int(unknown_user.sum()),
            _examples(interactions, unknown_user, "user_id"),
        )
        interactions = interactions.loc[~unknown_user]
    key = [c for c in ("user_id", "item_id", "timestamp", "event", "value") if c in interactions.columns]
    dup = interactions.duplicated(subset=key, keep="first")
    report.drop(
        "interactions",
        inter_file,
        "exact duplicate interaction",
        int(dup.sum()),
        _examples(interactions, dup, "item_id"),
    )
    interactions = interactions.loc[~dup]
    for table, frame in (("users", users), ("items", items), ("interactions", interactions)):
        if frame.empty:
            raise DataError(
                f"{files.get(table, table)}: no {table} left after validation "
                f"({report.dropped_total(table)} dropped); see the reasons above"
            )
    interactions = interactions.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    users, items, interactions = (
        _canonical_order(f, t)
        for f, t in ((users, "users"), (items, "items"), (interactions, "interactions"))
    )
    ds = Dataset(
        name=name,
        users=coerce_dtypes(users, "users"),
        items=coerce_dtypes(items, "items"),
        interactions=coerce_dtypes(interactions, "interactions"),
    )
    report.stats = dataset_stats(ds)
    return ds
