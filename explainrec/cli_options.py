"""Command-line pieces shared by every `explainrec` command, wherever its module lives.

A leaf like `explainrec.errors` (it imports nothing of ours), so the benchmark commands in
`training/` and `backend/` can use it without crossing a package boundary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_overrides_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--set KEY=VALUE` (repeatable) into `args.overrides`."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def print_json_report(report: Any, path: Path | None) -> None:
    """Print `report` as indented JSON and, when `path` is given, write the same text there."""
    text = json.dumps(report, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", "utf-8")
