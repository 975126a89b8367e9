"""`explainrec demo`: prepare -> train -> bundle -> serve API + UI, reusing finished steps.

    explainrec demo                                         # the demo shop, http://127.0.0.1:8000
    explainrec demo --dataset movielens --path /work/shared/data/ml-100k --port 8001

Artifacts live under --workdir (default ./artifacts): prepared tables in data/<dataset>/,
bundles in bundles/<version>/ with bundles/LATEST, the database explainrec.db beside them.
A second run finds the tables and the bundle trained from them (same data and config) and
goes straight to serving. Demo mode is on, so the UI can sign in as any model shopper.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from explainrec.cli_options import add_overrides_argument

DEFAULT_CONFIGS = {"demo": Path("configs/demo.yaml"), "movielens": Path("configs/ml100k.yaml")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=["demo", "movielens"], default="demo")
    parser.add_argument("--path", type=Path, help="movielens: the unzipped release folder (e.g. ml-100k)")
    parser.add_argument("--workdir", type=Path, default=Path("artifacts"))
    parser.add_argument(
        "--config",
        type=Path,
        help="training config YAML; default configs/demo.yaml or configs/ml100k.yaml when present",
    )
    add_overrides_argument(parser, "override a training config value, e.g. trainer.max_epochs=5")
    parser.add_argument("--retrain", action="store_true", help="train a new bundle even if one is reusable")
    parser.add_argument("--no-serve", action="store_true", help="stop after the bundle is ready")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)


def _say(message: str, start: float) -> None:
    print(f"[demo {time.perf_counter() - start:6.1f}s] {message}", flush=True)


def prepare(dataset: str, path: Path | None, data_dir: Path, start: float) -> None:
    from explainrec.errors import ConfigError
    from training.data.io import write_dataset
    from training.data.loaders import load_dataset

    if all((data_dir / f"{t}.parquet").is_file() for t in ("users", "items", "interactions")):
        _say(f"reusing prepared tables in {data_dir}", start)
        return
    if dataset == "movielens" and path is None:
        raise ConfigError("--dataset movielens needs --path to the unzipped MovieLens folder")
    _say(f"preparing the {dataset} data set", start)
    ds, _report = load_dataset(dataset, path if dataset == "movielens" else None)  # type: ignore[arg-type]
    write_dataset(ds, data_dir)
    _say(
        f"wrote {len(ds.users)} users, {len(ds.items)} items, {len(ds.interactions)} interactions "
        f"to {data_dir}",
        start,
    )


def train_config(args: argparse.Namespace, data_dir: Path) -> Any:
    from training.config import apply_override, read_yaml_mapping, validate_config
    from training.train_config import TrainConfig

    config_path = args.config or DEFAULT_CONFIGS[args.dataset]
    use_file = args.config is not None or config_path.is_file()
    raw: dict[str, Any] = read_yaml_mapping(config_path) if use_file else {"name": f"demo-{args.dataset}"}
    overrides = [f"data.kind={args.dataset}", *args.overrides]
    for item in overrides:
        apply_override(raw, item)
    raw.setdefault("data", {})["prepared"] = str(data_dir)
    return validate_config(raw, TrainConfig, str(config_path) if use_file else "the demo defaults")


def bundle_for(config: Any, workdir: Path, retrain: bool, start: float) -> Path:
    """The bundle trained from this exact config, training one when there is none."""
    from embeddings.bundle import resolve_bundle_dir
    from explainrec.errors import BundleError
    from training.train import train

    bundles = workdir / "bundles"
    fingerprint = hashlib.sha256(
        json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    stamp = bundles / f".demo-{fingerprint[:16]}.json"
    if stamp.is_file() and not retrain:
        version = json.loads(stamp.read_text("utf-8")).get("version", "")
        try:
            found = resolve_bundle_dir(bundles / str(version))
        except BundleError:
            found = None
        if found is not None:
            _say(f"reusing bundle {found} (same data and config; --retrain to train again)", start)
            from embeddings.bundle import point_latest

            point_latest(bundles, found.name)
            return found
    _say(f"training {config.name} (this is the slow step the first time)", start)
    result = train(config, workdir, progress=True)
    if result.bundle_dir is None:
        raise BundleError("training finished without writing a bundle")
    stamp.write_text(json.dumps({"version": result.bundle_dir.name, "metrics": result.metrics}), "utf-8")
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()) if isinstance(v, float))
    _say(f"bundle {result.bundle_dir} ready ({metrics})", start)
    return Path(result.bundle_dir)


def run(args: argparse.Namespace) -> int:
    from explainrec.commands.serve import serve, single_threaded_math

    # Before training loads numpy and torch: the server runs in this process afterwards.
    single_threaded_math(os.environ)
    start = time.perf_counter()
    workdir = args.workdir.resolve()
    data_dir = workdir / "data" / args.dataset
    prepare(args.dataset, args.path, data_dir, start)
    bundle = bundle_for(train_config(args, data_dir), workdir, args.retrain, start)
    if args.no_serve:
        _say(f"done: {bundle}", start)
        return 0
    os.environ["EXPLAINREC_WORKDIR"] = str(workdir)
    os.environ["EXPLAINREC_BUNDLE_DIR"] = str(workdir / "bundles")
    os.environ["EXPLAINREC_DEMO_MODE"] = "true"
    _say(f"starting the server: open http://{args.host}:{args.port}/", start)
    return serve(args.host, args.port, workers=1)
