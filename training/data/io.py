"""Read and write a canonical Dataset as three Parquet files with the schema version inside.

    out_dir/users.parquet, items.parquet, interactions.parquet

Each file's metadata carries `explainrec.schema_version` and `explainrec.dataset`, so a
reader can refuse tables written by an incompatible version instead of misreading them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from explainrec.errors import DataError
from training.data.schema import (
    DTYPES,
    LIST_COLUMNS,
    REQUIRED_COLUMNS,
    SCHEMA_VERSION,
    TABLES,
    Dataset,
    coerce_dtypes,
)

VERSION_KEY = b"explainrec.schema_version"
NAME_KEY = b"explainrec.dataset"

# Explicit Arrow types so that e.g. an all-empty categories column is still list<string>.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "Int64": pa.int64(),
    "float64": pa.float64(),
}


def _arrow_schema(df: pd.DataFrame, table: str) -> pa.Schema:
    inferred = pa.Schema.from_pandas(df, preserve_index=False)
    fields = []
    for field in inferred:
        dtype = DTYPES[table].get(field.name)
        if dtype is not None:
            field = pa.field(field.name, _ARROW_TYPES[dtype])
        elif field.name in LIST_COLUMNS:
            field = pa.field(field.name, pa.list_(pa.string()))
        elif field.name == "timestamp":
            field = pa.field(field.name, pa.timestamp("ns", tz="UTC"))
        fields.append(field)
    return pa.schema(fields)


def _write_table(df: pd.DataFrame, table: str, name: str, path: Path) -> None:
    frame = coerce_dtypes(df, table)
    arrow = pa.Table.from_pandas(frame, schema=_arrow_schema(frame, table), preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata[VERSION_KEY] = str(SCHEMA_VERSION).encode()
    metadata[NAME_KEY] = name.encode()
    pq.write_table(arrow.replace_schema_metadata(metadata), path)


def write_dataset(ds: Dataset, out_dir: Path) -> None:
    """Write the three tables of `ds` into `out_dir` (created if needed), replacing old files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        final = out_dir / f"{table}.parquet"
        # Write beside the target and rename, so a crash never leaves a half-written table.
        tmp = out_dir / f".{table}.parquet.tmp"
        _write_table(getattr(ds, table), table, ds.name, tmp)
        tmp.replace(final)


def _read_table(path: Path, table: str) -> tuple[pd.DataFrame, str]:
    if not path.is_file():
        raise DataError(f"{path}: missing; expected the {table} table written by `explainrec prepare`")
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    metadata = arrow.schema.metadata or {}
    version = metadata.get(VERSION_KEY)
    if version is None:
        raise DataError(f"{path}: no {VERSION_KEY.decode()} in metadata; not written by `explainrec prepare`")
    if int(version) != SCHEMA_VERSION:
        raise DataError(
            f"{path}: schema version {int(version)}, this explainrec reads version {SCHEMA_VERSION}; "
            "run `explainrec prepare` again"
        )
    df = arrow.to_pandas()
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing required column(s) {missing}; found {list(df.columns)}")
    return coerce_dtypes(df, table), metadata.get(NAME_KEY, b"").decode()


def read_dataset(dir: Path) -> Dataset:
    """Read the tables written by `write_dataset` (raises DataError if missing or incompatible)."""
    dir = Path(dir)
    if not dir.is_dir():
        raise DataError(f"{dir}: no such directory; expected the output of `explainrec prepare`")
    frames: dict[str, pd.DataFrame] = {}
    name = ""
    for table in TABLES:
        frames[table], name = _read_table(dir / f"{table}.parquet", table)
    return Dataset(name=name or dir.name, **frames)


def write_json(obj: object, path: Path) -> None:
    """Write a JSON report atomically (used for prepare_report.json)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
