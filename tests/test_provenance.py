"""Every bench report says where, when and from which code it ran (explainrec/provenance.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from explainrec.provenance import commit, environment


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def test_the_environment_names_the_machine_the_date_and_the_packages() -> None:
    env = environment()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", env["finished_at"])
    assert env["cpu"] and env["cpus"] >= 1 and env["python"].count(".") == 2
    assert env["memory_gib"] is None or env["memory_gib"] > 0
    assert {"torch", "fastapi"} <= set(env["packages"])
    assert "faiss-gpu" not in env["packages"] or "faiss-cpu" not in env["packages"]


def test_the_commit_is_short_marked_dirty_and_absent_outside_a_checkout(tmp_path: Path) -> None:
    assert commit(tmp_path) is None
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n", "utf-8")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    clean = commit(repo)
    assert clean is not None and re.fullmatch(r"[0-9a-f]{7,}", clean)
    (repo / "a.txt").write_text("two\n", "utf-8")
    assert commit(repo) == clean + "+dirty"
    (repo / "untracked.txt").write_text("x", "utf-8")  # untracked files do not make it dirty
    _git(repo, "checkout", "-q", "a.txt")
    assert commit(repo) == clean
