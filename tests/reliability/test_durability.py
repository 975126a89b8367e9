"""Durability: SIGKILL the real server while another process streams feedback at it, restart it,
and check that every acknowledged event is stored exactly once, that retrying the unacknowledged
ones with the same idempotency keys creates no duplicates, and that nothing is half-written.

    pytest tests/reliability/test_durability.py -q -s      # -s prints the counts
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from backend.bench_serve import ServerProcess, explainrec_server, free_port

N_EVENTS = 600
KILL_AFTER_ACKS = 150
WRITER_THREADS = 8
ACKED = {"200", "201"}
RACERS = 12
RACE_KEY = "race-same-key"  # 200: the key was already stored (a replay), still an acknowledgement

pytestmark = pytest.mark.slow


def mint_key_with_cli(workdir: Path) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "explainrec.cli",
            "apikey",
            "create",
            "--scopes",
            "read,feedback",
            "--name",
            "durability",
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1]


def read_ledger(path: Path) -> dict[str, list[str]]:
    outcomes: dict[str, list[str]] = {}
    for line in path.read_text("utf-8").splitlines():
        key, _, status = line.partition(" ")
        outcomes.setdefault(key, []).append(status)
    return outcomes


def stored_rows(workdir: Path) -> list[tuple[str, str, str, str, float | None, str]]:
    """(idempotency key, user, item, event, value, timestamp) of every stored feedback row."""
    with sqlite3.connect(workdir / "explainrec.db") as db:
        rows = db.execute(
            "SELECT idempotency_key, user_id, item_id, event, value, timestamp FROM feedback_events"
        ).fetchall()
    # The service scopes keys per user as "<user_id>\x1f<key>"; only the client's part matters here.
    return [(str(k).rpartition("\x1f")[2], u, i, e, v, t) for k, u, i, e, v, t in rows]


def race_one_key(url: str, key: str) -> list[int]:
    """RACERS clients send the same event with the same idempotency key at the same moment."""
    barrier = threading.Barrier(RACERS)
    event = {"user_id": "u03", "item_id": "i07", "event": "like"}

    def send() -> int:
        with httpx.Client(base_url=url, headers={"X-API-Key": key, "Idempotency-Key": RACE_KEY}) as client:
            barrier.wait()
            return client.post("/api/v1/feedback", json=event, timeout=30).status_code

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(lambda _: send(), range(RACERS)))


def start_writer(url: str, key: str, events: Path, ledger: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.feedback_writer",
            "--url",
            url,
            "--key",
            key,
            "--events",
            str(events),
            "--ledger",
            str(ledger),
            "--threads",
            str(WRITER_THREADS),
        ],
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_stream_loses_no_acknowledged_event_and_duplicates_none(
    tmp_path: Path, toy_bundles: Path, workers: int
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    key = mint_key_with_cli(workdir)
    events = [
        {
            "user_id": f"u{n % 20:02d}",
            "item_id": f"i{(n * 7) % 40:02d}",
            "event": ("click", "like", "view", "cart")[n % 4],
            "idempotency_key": f"dur-{n:05d}",
        }
        for n in range(N_EVENTS)
    ]
    by_key = {e["idempotency_key"]: e for e in events}
    events_file = tmp_path / "events.json"
    events_file.write_text(json.dumps(events), "utf-8")
    port = free_port()
    server: ServerProcess = explainrec_server(
        toy_bundles, workdir, workers=workers, port=port, EXPLAINREC_ACCESS_LOG="true"
    ).start()
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    writer = start_writer(server.url, key, events_file, ledger)
    try:
        deadline = time.monotonic() + 120
        while sum(s in ACKED for v in read_ledger(ledger).values() for s in v) < KILL_AFTER_ACKS:
            assert writer.poll() is None, "the writer finished before the kill: raise N_EVENTS"
            assert time.monotonic() < deadline, f"too few acks in 120 s; server log: {server.log_tail()}"
            time.sleep(0.02)
        server.kill()  # SIGKILL to the whole process group: no shutdown hooks, no flush
        killed_at_acks = sum(s in ACKED for v in read_ledger(ledger).values() for s in v)
        assert writer.wait(timeout=120) == 0
    finally:
        server.kill()
        if writer.poll() is None:
            writer.kill()

    first_pass = read_ledger(ledger)
    acked = {k for k, statuses in first_pass.items() if ACKED & set(statuses)}
    unacked = [k for k in by_key if k not in acked]
    assert len(first_pass) == N_EVENTS, "the writer must record an outcome for every event"
    assert 0 < len(unacked) < N_EVENTS, "the kill did not land mid-stream"

    server = explainrec_server(
        toy_bundles, workdir, workers=workers, port=port, EXPLAINREC_ACCESS_LOG="true"
    ).start()
    try:
        rows = stored_rows(workdir)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row[0]] = counts.get(row[0], 0) + 1
        lost = sorted(k for k in acked if counts.get(k, 0) == 0)
        doubled = sorted(k for k, n in counts.items() if n > 1)
        committed_unacked = sorted(k for k in unacked if counts.get(k, 0) == 1)
        assert not lost, f"{len(lost)} acknowledged events were lost: {lost[:10]}"
        assert not doubled, f"duplicated events: {doubled[:10]}"

        # The client retries what it never saw acknowledged, with the same keys.
        retry_file = tmp_path / "retry.json"
        retry_file.write_text(json.dumps([by_key[k] for k in unacked]), "utf-8")
        retry_ledger = tmp_path / "retry-ledger.txt"
        retry_ledger.touch()
        assert start_writer(server.url, key, retry_file, retry_ledger).wait(timeout=300) == 0
        retried = read_ledger(retry_ledger)
        assert all(s[0] in ACKED for s in retried.values()), {
            k: s for k, s in retried.items() if s[0] not in ACKED
        }
        replays = sum(s[0] == "200" for s in retried.values())
        racing = race_one_key(server.url, key)
        assert sorted(racing) == [200] * (RACERS - 1) + [201], racing
    finally:
        server.stop()

    final = [row for row in stored_rows(workdir) if row[0] != RACE_KEY]
    final_keys = [row[0] for row in final]
    assert len(final) == N_EVENTS and set(final_keys) == set(by_key), (len(final), N_EVENTS)
    assert [row[0] for row in stored_rows(workdir)].count(RACE_KEY) == 1
    for key_, user, item, event, _value, timestamp in final:  # no half-written rows
        expected = by_key[key_]
        assert (user, item, event) == (expected["user_id"], expected["item_id"], expected["event"])
        assert timestamp
    # The server's own log (the access log is switched on above) never shows the API key.
    logged = "".join(f.read_text("utf-8", "replace") for f in workdir.glob("server-*.log"))
    assert "POST /api/v1/feedback" in logged and key not in logged and key[4:20] not in logged
    # Events committed just before the kill but never acknowledged come back as replays (200), not new rows.
    assert replays == len(committed_unacked)
    print(
        f"\ndurability ({workers} worker(s)): {N_EVENTS} events, SIGKILL after {killed_at_acks} acks; "
        f"unacked {len(unacked)} (committed before the kill: {len(committed_unacked)}); "
        f"retried -> {len(unacked) - replays} new + {replays} replays; lost 0, duplicates 0; "
        f"{RACERS} racers on one key -> 1 row; final rows {len(final)}"
    )
