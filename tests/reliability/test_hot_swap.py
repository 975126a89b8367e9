"""Hot swap under load on the real server: `POST /api/v1/admin/reload` while locust drives
top-10 requests, with 0 failed requests and answers switching to the new model version; corrupt
bundles (a flipped byte, a truncated file, a missing manifest) are refused, the old one keeps
serving, and /readyz says why.

    pytest tests/reliability/test_hot_swap.py -q -s
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.bench_serve import (
    IDS_ENV,
    KEY_ENV,
    explainrec_server,
    feedback_to_next_recs,
    run_locust,
    seed_database,
)
from tests.support.toy_shop import make_toy_bundle

pytestmark = pytest.mark.slow
LOAD_SECONDS = 10
LOAD_USERS = 8


def served_version(client: httpx.Client) -> str:
    response = client.get("/api/v1/recommendations", params={"user_id": "u00", "k": 3})
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def corrupt_copies(root: Path, good: Path) -> dict[str, Path]:
    """Three broken siblings of a good bundle version under the same bundles root."""
    broken = {name: root / f"{good.name}-{name}" for name in ("flipped-byte", "truncated", "no-manifest")}
    for target in broken.values():
        shutil.copytree(good, target)
    vectors = broken["flipped-byte"] / "item_vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF  # same size, one bit pattern changed: only the checksum can tell
    vectors.write_bytes(bytes(data))
    items = broken["truncated"] / "items.parquet"
    items.write_bytes(items.read_bytes()[: items.stat().st_size // 2])
    (broken["no-manifest"] / "manifest.json").unlink()
    return broken


def test_reload_under_load_fails_no_request_and_refuses_corrupt_bundles(
    tmp_path: Path, toy_bundles: Path
) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(toy_bundles, root)
    first = (root / "LATEST").read_text().strip()
    workdir = tmp_path / "work"
    workdir.mkdir()
    server = explainrec_server(root, workdir, workers=1).start()
    try:
        key, _ = seed_database(workdir, [])
        ids = {
            "users": [f"u{n:02d}" for n in range(20)],
            "items": [f"i{n:02d}" for n in range(40)],
            "categories": ["Books", "Games", "Garden", "Kitchen"],
        }
        (workdir / "ids.json").write_text(json.dumps(ids), "utf-8")
        client = httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30)
        assert served_version(client) == first

        second = make_toy_bundle(root, seed=1)  # also moves LATEST to it
        assert second.name != first
        stats: dict[str, Any] = {}
        load = threading.Thread(
            target=lambda: stats.update(
                run_locust(
                    "RecsUser",
                    server.url,
                    LOAD_USERS,
                    LOAD_SECONDS,
                    workdir,
                    {IDS_ENV: str(workdir / "ids.json"), KEY_ENV: key},
                )
            )
        )
        load.start()
        time.sleep(LOAD_SECONDS * 0.3)
        swapped = client.post("/api/v1/admin/reload", json={})
        assert swapped.status_code == 200, swapped.text
        assert swapped.json() == {**swapped.json(), "model_version": second.name, "previous_version": first}
        assert served_version(client) == second.name
        time.sleep(LOAD_SECONDS * 0.3)
        back = client.post("/api/v1/admin/reload", json={"version": first})  # and back, by name
        assert back.status_code == 200 and back.json()["model_version"] == first
        load.join(timeout=LOAD_SECONDS + 150)
        assert stats and stats["errors"] == 0, stats
        assert served_version(client) == first

        for name, broken in corrupt_copies(root, second).items():
            refused = client.post("/api/v1/admin/reload", json={"version": broken.name})
            assert refused.status_code == 422, (name, refused.text)
            assert f"still serving {first}" in refused.json()["detail"], refused.json()
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["model_version"] == first
            reason = ready.json()["last_reload_error"] or ""
            assert broken.name in reason or "manifest" in reason or "sha256" in reason, (name, reason)
            assert served_version(client) == first
        print(f"\nhot swap: {stats} during two reloads; 3 corrupt bundles refused, {first} kept serving")
        # The bench's unloaded write-then-read probe (any non-2xx answer raises).
        timed = feedback_to_next_recs(server, ids, key, n=5)
        assert timed["n"] == 5 and 0 < timed["p50_ms"] <= timed["p95_ms"]
    finally:
        server.stop()
