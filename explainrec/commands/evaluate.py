"""`explainrec evaluate`: tune every model on validation, rank the test split once, report.

    explainrec evaluate --dataset movielens --path ../shared/data/ml-100k --protocol random \
        --models all --json artifacts/eval-random.json [--trials N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from explainrec.cli_options import add_overrides_argument
from explainrec.errors import ConfigError
from explainrec.provenance import environment

DEFAULT_CONFIG = Path("configs/evaluate/ml100k.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=("movielens", "csv", "demo"),
        required=True,
        help="loader kind (`demo` generates the demo shop and ignores --path)",
    )
    parser.add_argument("--path", type=Path, default=None, help="folder with the raw data set")
    parser.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="column mapping YAML for --dataset csv (see `explainrec prepare`)",
    )
    parser.add_argument("--protocol", choices=("random", "temporal", "cold-start"), default="random")
    parser.add_argument(
        "--models",
        default="all",
        help="'all' (the protocol's models) or a comma list, e.g. ease,ials,two-tower",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trials per model on the validation split (overrides the config's budgets)",
    )
    parser.add_argument("--seed", type=int, default=None, help="split and model seed (default: config)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="evaluation config (budgets)")
    add_overrides_argument(parser, "override a config key, e.g. --set trials.ease=20 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.data.loaders import load_dataset
    from training.data.splits import make_split
    from training.evaluation.config import EvaluateConfig
    from training.evaluation.data import build_eval_data
    from training.evaluation.harness import evaluate_model
    from training.evaluation.models import MODELS, resolve_models
    from training.evaluation.report import format_table, report_json

    config = load_config(args.config, EvaluateConfig, args.overrides)
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    seed = config.seed if args.seed is None else args.seed
    names = resolve_models(args.models, args.protocol)
    if args.dataset == "movielens" and args.path is None:
        raise ConfigError("--path is required for --dataset movielens")
    if args.dataset == "csv" and args.mapping is None:
        raise ConfigError("--mapping is required for --dataset csv")
    loader_options = {"config": args.mapping} if args.dataset == "csv" else {}

    settings: dict[str, object] = {"progress": not args.quiet, "text_cache_dir": config.text_cache_dir}
    if {"two-tower", "mf"} & set(names):
        from training.train_config import TrainConfig

        settings["config"] = load_config(config.two_tower_config, TrainConfig)

    _progress(f"loading {args.dataset} data from {args.path} ...")
    ds, _ = load_dataset(args.dataset, args.path, **loader_options)
    split = make_split(ds, args.protocol, seed=seed, **config.split.model_dump())
    data = build_eval_data(ds, split)
    counts = data.counts()
    _progress(f"{ds.name}, {args.protocol} split: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    results = []
    for position, name in enumerate(names, start=1):
        trials = args.trials if args.trials is not None else config.trials_for(name)
        _progress(f"[{position}/{len(names)}] {name}: tuning on validation ({trials} trials) ...")
        started = time.perf_counter()
        result = evaluate_model(
            MODELS[name],
            data,
            trials,
            seed=seed,
            metric=config.metric,
            batch_size=config.batch_size,
            settings=settings,
            progress=not args.quiet,
        )
        results.append(result)
        _progress(
            f"[{position}/{len(names)}] {name}: valid {config.metric}="
            f"{result.valid_metrics[config.metric]:.4f}, test ndcg@10={result.metrics['ndcg@10']:.4f} "
            f"({time.perf_counter() - started:.0f}s)"
        )

    print(f"{ds.name} / {args.protocol} (test split, full ranking, {counts['items']} items)")
    print(format_table(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = report_json(ds.name, args.protocol, counts, results)
        # The report carries how it was made, so a figure in the docs can be checked against it.
        document["run"] = {
            "seed": seed,
            "config": str(args.config),
            "overrides": list(args.overrides or []),
            "trials": args.trials,
            "metric": config.metric,
        }
        document["environment"] = environment()
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        _progress(f"wrote {args.json}")
    return 0
