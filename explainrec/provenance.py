"""Where, when and from which code a benchmark ran: the `environment` of every bench report.

    report["environment"] = environment()
    # {"finished_at": "2026-11-29T16:05:10Z", "commit": "08256d6", "cpu": "AMD EPYC 7B13",
    #  "cpus": 2, "memory_gib": 23.5, "python": "3.11.7", "packages": {"torch": "2.13.0", ...}}

docs/benchmarks.md puts each figure beside its command, machine and date; a report that carries
them itself can be checked against the docs later. `commit` ends in `+dirty` when the checkout
has uncommitted changes, and is None outside a git checkout (an installed package).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# What the figures depend on; those not installed are left out.
PACKAGES = ("torch", "lightning", "faiss-cpu", "faiss-gpu", "numpy", "fastapi", "uvicorn", "locust")


def environment(repo_root: Path = REPO_ROOT) -> dict[str, Any]:
    return {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit(repo_root),
        "cpu": cpu_model(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "packages": package_versions(),
    }


def commit(repo_root: Path) -> str | None:
    """The checkout's short commit, `+dirty` with uncommitted changes; None if not a checkout."""
    if not (repo_root / ".git").exists():
        return None
    try:
        head = _git(repo_root, "rev-parse", "--short", "HEAD")
        changed = _git(repo_root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if changed else "")


def _git(repo_root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo_root), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text("utf-8", "replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
