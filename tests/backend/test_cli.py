"""`explainrec recommend` and `explainrec apikey create` (serve/demo start servers: see docs/api.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from explainrec.cli import main
from explainrec.commands.serve import MATH_THREAD_VARIABLES


def test_recommend_prints_json_and_table(toy_bundles: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "recommend",
                "--user-id",
                "u01",
                "--k",
                "4",
                "--explain",
                "--bundle",
                str(toy_bundles),
                "--format",
                "json",
            ]
        )
        == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert body["strategy"] == "personalized" and len(body["items"]) == 4
    assert body["items"][0]["explanation"]["source"] == "template"
    assert main(["recommend", "--user-id", "u01", "--k", "3", "--bundle", str(toy_bundles)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("user u01: personalized") and len(table) == 4
    assert body["items"][0]["item_id"] in table[1]


def test_recommend_bad_input_is_a_clear_error(
    toy_bundles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", "--user-id", "u01", "--k", "0", "--bundle", str(toy_bundles)]) == 2
    assert "--k must be" in capsys.readouterr().err
    assert main(["recommend", "--user-id", "u01", "--bundle", str(tmp_path)]) == 2
    assert "no bundle" in capsys.readouterr().err


def test_apikey_create_prints_once_and_stores_hash(
    tmp_path: Path, toy_bundles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["apikey", "create", "--scopes", "read,feedback", "--name", "shop", "--workdir", str(tmp_path)])
        == 0
    )
    captured = capsys.readouterr()
    key = captured.out.strip()
    assert key.startswith("erk_") and "feedback,read" in captured.err
    assert key.encode() not in (tmp_path / "explainrec.db").read_bytes()
    with TestClient(create_app(Settings(workdir=tmp_path, bundle_dir=toy_bundles))) as client:
        ok = client.get("/api/v1/users/u00", headers={"X-API-Key": key})
        assert ok.status_code == 200
        assert client.post("/api/v1/admin/reload", headers={"X-API-Key": key}).status_code == 403
    assert main(["apikey", "create", "--scopes", "root", "--workdir", str(tmp_path)]) == 2
    assert "--scopes" in capsys.readouterr().err


def test_serve_runs_the_math_libraries_one_thread_a_worker_unless_told_otherwise(
    tmp_path: Path, toy_bundles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import uvicorn

    environ = {k: v for k, v in os.environ.items() if k not in MATH_THREAD_VARIABLES}
    environ["OPENBLAS_NUM_THREADS"] = "4"  # the operator's own choice stays
    monkeypatch.setattr(os, "environ", environ)
    seen: dict[str, str | None] = {}

    def fake_run(*_args: object, **kwargs: object) -> None:  # the workers would start here
        seen.update({name: os.environ.get(name) for name in MATH_THREAD_VARIABLES})
        seen["workers"] = str(kwargs["workers"])

    monkeypatch.setattr(uvicorn, "run", fake_run)
    assert main(["serve", "--workdir", str(tmp_path), "--bundle", str(toy_bundles), "--workers", "2"]) == 0
    assert seen == {
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "4",
        "MKL_NUM_THREADS": "1",
        "workers": "2",
    }
