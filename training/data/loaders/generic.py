"""Generic import: your own CSV or Parquet files plus a YAML column mapping.

See configs/data/csv-example.yaml. `columns` maps a canonical name to your column's name;
a canonical column present under its own name needs no mapping. Relative file paths are
resolved against `--path` if given, else against the mapping file's folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar, Literal

import pandas as pd
from pydantic import Field, model_validator

from explainrec.errors import ConfigError, DataError
from training.config import StrictModel, load_config
from training.data.report import PrepareReport
from training.data.schema import (
    INTERACTION_OPTIONAL,
    INTERACTION_REQUIRED,
    ITEM_OPTIONAL,
    ITEM_REQUIRED,
    USER_PROFILE_FIELDS,
    Dataset,
)
from training.data.validate import (
    LINE,
    check_events,
    clean_ids,
    drop_duplicate_ids,
    finalize,
    parse_number,
    parse_timestamp,
    read_delimited,
    read_parquet_table,
    require_columns,
    require_rows,
)

log = logging.getLogger("explainrec.data")

CANONICAL = {
    "users": ("user_id", *USER_PROFILE_FIELDS),
    "items": (*ITEM_REQUIRED, *ITEM_OPTIONAL),
    "interactions": (*INTERACTION_REQUIRED, *INTERACTION_OPTIONAL),
}
NUMERIC = {"age": True, "income": False, "price": False, "year": True, "value": False, "quantity": True}


class TableMapping(StrictModel):
    path: str
    format: Literal["auto", "csv", "parquet"] = "auto"
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: dict[str, str] = Field(default_factory=dict)
    # Further source columns to keep unchanged as extra attributes.
    extra_columns: list[str] = Field(default_factory=list)

    _table: ClassVar[str] = "users"

    @model_validator(mode="after")
    def _known_targets(self) -> TableMapping:
        unknown = sorted(set(self.columns) - set(CANONICAL[self._table]))
        if unknown:
            raise ValueError(
                f"unknown canonical column(s) {unknown} in columns; "
                f"expected some of {list(CANONICAL[self._table])}"
            )
        return self


class UsersMapping(TableMapping):
    _table: ClassVar[str] = "users"


class ItemsMapping(TableMapping):
    _table: ClassVar[str] = "items"
    categories_separator: str = "|"


class InteractionsMapping(TableMapping):
    _table: ClassVar[str] = "interactions"
    timestamp_unit: Literal["s", "ms", "us", "ns"] | None = None
    timestamp_format: str | None = None
    # Event for every row when the file has no event column (e.g. an orders export).
    event: str | None = None
    # Your event names -> canonical ones, e.g. {add_to_cart: cart, buy: purchase}.
    event_map: dict[str, str] = Field(default_factory=dict)


class CsvMapping(StrictModel):
    name: str = "csv"
    users: UsersMapping | None = None
    items: ItemsMapping
    interactions: InteractionsMapping


def _read(mapping: TableMapping, base: Path, table: str) -> tuple[pd.DataFrame, str]:
    path = Path(mapping.path)
    path = path if path.is_absolute() else base / path
    fmt = mapping.format
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    log.info("reading %s", path)
    if fmt == "parquet":
        df = read_parquet_table(path, f"the {table} table (Parquet)")
    else:
        df = read_delimited(
            path,
            sep=mapping.delimiter,
            encoding=mapping.encoding,
            what=f"the {table} table (CSV with a header row)",
        )
    require_rows(df, str(path), table)
    sources = {canon: src for canon, src in mapping.columns.items()}
    for canon in CANONICAL[table]:
        if canon not in sources and canon in df.columns:
            sources[canon] = canon
    require_columns(df, [*sources.values(), *mapping.extra_columns], str(path), "named in the mapping config")
    out = pd.DataFrame({canon: df[src] for canon, src in sources.items()})
    for extra in mapping.extra_columns:
        if extra not in out.columns:
            out[extra] = df[extra]
    out[LINE] = df[LINE]
    return out, str(path)


def _parse_numbers(df: pd.DataFrame, table: str, file: str, report: PrepareReport) -> pd.DataFrame:
    for column, integer in NUMERIC.items():
        if column in df.columns:
            df = parse_number(df, column, table, file, report, required=False, integer=integer)
    return df


def _items(mapping: ItemsMapping, base: Path, report: PrepareReport) -> tuple[pd.DataFrame, str]:
    items, file = _read(mapping, base, "items")
    require_columns(items, ["item_id"], file, "map item_id under items.columns")
    items = clean_ids(items, ["item_id"], "items", file, report)
    items = drop_duplicate_ids(items, "item_id", "items", file, report)
    if "title" not in items.columns:
        report.note(f"{file}: no title column; titles are the item ids")
        items["title"] = items["item_id"]
    untitled = items["title"].isna() | (items["title"].astype(str).str.strip() == "")
    report.fix(
        "items",
        file,
        "missing title replaced by the item id",
        int(untitled.sum()),
        [f"line {n}" for n in items.loc[untitled, LINE].head(5)],
    )
    items["title"] = items["title"].where(~untitled, items["item_id"]).astype(str).str.strip()
    if "categories" in items.columns:
        sep = mapping.categories_separator
        items["categories"] = [
            [c.strip() for c in str(v).split(sep) if c.strip()] if pd.notna(v) else []
            for v in items["categories"]
        ]
    else:
        report.note(f"{file}: no categories column; every item has no categories")
        items["categories"] = [[] for _ in range(len(items))]
    return _parse_numbers(items, "items", file, report), file


def _interactions(
    mapping: InteractionsMapping, base: Path, report: PrepareReport
) -> tuple[pd.DataFrame, str]:
    inter, file = _read(mapping, base, "interactions")
    require_columns(
        inter,
        ["user_id", "item_id", "timestamp"],
        file,
        "map user_id, item_id and timestamp under interactions.columns",
    )
    if "event" not in inter.columns:
        if mapping.event is None:
            raise DataError(
                f"{file}: no event column; map one under interactions.columns.event "
                "or set interactions.event (e.g. purchase) in the mapping config"
            )
        inter["event"] = mapping.event
    elif mapping.event_map:
        inter["event"] = inter["event"].map(lambda e: mapping.event_map.get(str(e).strip(), e))
    inter = clean_ids(inter, ["user_id", "item_id"], "interactions", file, report)
    inter = check_events(inter, file, report)
    inter = parse_timestamp(
        inter,
        "timestamp",
        "interactions",
        file,
        report,
        unit=mapping.timestamp_unit,
        fmt=mapping.timestamp_format,
    )
    inter = _parse_numbers(inter, "interactions", file, report)
    if "value" in inter.columns:
        # A rating without stars says nothing; other events may lack a value.
        unrated = (inter["event"] == "rating") & inter["value"].isna()
        report.drop(
            "interactions",
            file,
            "rating event without a value",
            int(unrated.sum()),
            [f"line {n}" for n in inter.loc[unrated, LINE].head(5)],
        )
        inter = inter[~unrated]
    return inter, file


def load_mapped(config: Path | None, base: Path | None, report: PrepareReport) -> Dataset:
    """Load the tables named in the mapping file `config` (raises ConfigError / DataError)."""
    if config is None:
        raise ConfigError("--dataset csv needs --config MAPPING.yaml (see configs/data/csv-example.yaml)")
    mapping = load_config(Path(config), CsvMapping)
    root = Path(base) if base is not None else Path(config).resolve().parent
    items, items_file = _items(mapping.items, root, report)
    inter, inter_file = _interactions(mapping.interactions, root, report)
    users = None
    files = {"items": items_file, "interactions": inter_file}
    if mapping.users is not None:
        users, files["users"] = _read(mapping.users, root, "users")
        require_columns(users, ["user_id"], files["users"], "map user_id under users.columns")
        users = clean_ids(users, ["user_id"], "users", files["users"], report)
        users = drop_duplicate_ids(users, "user_id", "users", files["users"], report)
        users = _parse_numbers(users, "users", files["users"], report)
    return finalize(mapping.name, users, items, inter, files, report)
