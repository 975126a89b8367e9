"""One entry point for every data source: `load_dataset(kind, path, **opts)`.

movielens  path = an unzipped release folder; opts: download (official name), strict
demo       path ignored; opts: seed, n_users, n_items
csv        path = base folder of the files (default: the mapping's folder);
           opts: config (the YAML column mapping, required), strict
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from explainrec.errors import ConfigError, DataError
from training.data.report import PrepareReport, dataset_stats
from training.data.schema import Dataset

KINDS = ("movielens", "demo", "csv")


def _pop_bool(opts: dict[str, Any], key: str) -> bool:
    return bool(opts.pop(key, False))


def load_dataset(
    kind: Literal["movielens", "demo", "csv"], path: Path | None, **opts: Any
) -> tuple[Dataset, PrepareReport]:
    """Load and validate a data set into canonical tables, with a report of what was dropped/fixed."""
    strict = _pop_bool(opts, "strict")
    if kind == "demo":
        from training.data.demo_shop import generate_demo_shop

        seed = int(opts.pop("seed", 0))
        n_users, n_items = int(opts.pop("n_users", 3000)), int(opts.pop("n_items", 2000))
        _reject_unknown(kind, opts)
        report = PrepareReport("demo-shop", f"generator (seed={seed})", strict=strict)
        ds = generate_demo_shop(seed=seed, n_users=n_users, n_items=n_items)
        report.note(
            "users.planted_segment is the generator's ground truth: use it for evaluation only, "
            "never as a model feature"
        )
    elif kind == "movielens":
        from training.data.loaders.download import download_movielens
        from training.data.loaders.movielens import load_movielens

        download = opts.pop("download", None)
        _reject_unknown(kind, opts)
        if download:
            path = download_movielens(download, Path(path) if path is not None else Path("data/raw"))
        if path is None:
            raise ConfigError("--dataset movielens needs --path FOLDER (or --download NAME)")
        report = PrepareReport("movielens", str(path), strict=strict)
        ds = load_movielens(Path(path), report)
        report.dataset = ds.name
    elif kind == "csv":
        from training.data.loaders.generic import load_mapped

        config = opts.pop("config", None)
        _reject_unknown(kind, opts)
        report = PrepareReport("csv", str(config), strict=strict)
        ds = load_mapped(Path(config) if config is not None else None, Path(path) if path else None, report)
        report.dataset = ds.name
    else:
        raise ConfigError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not report.stats:
        report.stats = dataset_stats(ds)
    return ds, report


def _reject_unknown(kind: str, opts: dict[str, Any]) -> None:
    if opts:
        raise ConfigError(f"unknown option(s) {sorted(opts)} for dataset kind {kind!r}")


__all__ = ["KINDS", "DataError", "PrepareReport", "load_dataset"]
