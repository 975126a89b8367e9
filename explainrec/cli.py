"""The `explainrec` command line.

    explainrec prepare --dataset demo --out artifacts/data
    explainrec train --config configs/demo.yaml
    explainrec demo

Each subcommand is a module in `explainrec.commands`, imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from explainrec import __version__
from explainrec.errors import ExplainrecError

# name -> (module, one-line help). Order is the order of a typical run.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("explainrec.commands.prepare", "validate raw data into canonical Parquet tables"),
    "train": ("explainrec.commands.train", "train the two-tower model and write a bundle"),
    "evaluate": ("explainrec.commands.evaluate", "full-ranking evaluation against baselines"),
    "build": ("explainrec.commands.build", "build a serving bundle from a trained checkpoint"),
    "evaluate-explanations": (
        "explainrec.commands.evaluate_explanations",
        "measure grounding, necessity and latency of explanations",
    ),
    "recommend": ("explainrec.commands.recommend", "answer one user's top-k from a bundle, no server"),
    "serve": ("explainrec.commands.serve", "serve the API and web UI with uvicorn"),
    "demo": ("explainrec.commands.demo", "prepare, train, build and serve the demo shop"),
    "apikey": ("explainrec.commands.apikey", "create API keys for API clients"),
    "bench": ("explainrec.commands.bench", "benchmarks: index, serve, train"),
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    description = __doc__.splitlines()[1] if __doc__ else ""
    parser = argparse.ArgumentParser(prog="explainrec", description=description)
    parser.add_argument("--version", action="version", version=f"explainrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported; the others show their one-line help.
        if only == name:
            _load(name).add_arguments(cmd_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    if chosen is not None and chosen not in COMMANDS:
        chosen = None
    parser = build_parser(only=chosen)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(_load(args.command).run(args) or 0)
    except ExplainrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
