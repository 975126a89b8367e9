"""`explainrec bench serve`: one short real run on the toy bundle (its JSON, the issue-9 shape
and the figures beside it), and the pieces that need no load run: option checks, locust
statistics parsing, the ceiling app and the profile summary. test_hot_swap.py drives the real
server with locust too; docs/benchmarks.md has the full runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from backend import bench_serve
from backend.app import API_ROUTERS
from explainrec.errors import ConfigError, ExplainrecError
from tests.support.telemetry import count_tracer_provider_lookups

LOCUST_CSV = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,recs,4880,2,120,130.2,3.1,900.5,1420.0,244.07,0.1,120,140,160,170,210,250,400,580,880,900,900
,Aggregated,4880,2,120,130.2,3.1,900.5,1420.0,244.07,0.1,120,140,160,170,210,250,400,580,880,900,900
"""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_serve.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.slow
def test_a_short_run_reports_the_issue_9_shape(tmp_path: Path, toy_bundles: Path) -> None:
    out = tmp_path / "serve.json"
    args = ["--bundle", str(toy_bundles), "--scenarios", "recs,feedback", "--concurrency", "4"]
    assert bench_serve.run(parse([*args, "--duration", "2", "--json", str(out)])) == 0
    report = json.loads(out.read_text("utf-8"))
    assert report["concurrency"] == 4 and set(report["scenarios"]) == {"recs", "feedback"}
    for stats in [*report["scenarios"].values(), report["ceiling"]]:
        assert set(stats) == {"rps", "p50_ms", "p95_ms", "p99_ms", "errors"}
        assert stats["rps"] > 0 and stats["errors"] == 0 and stats["p50_ms"] <= stats["p99_ms"]
    ratio = report["scenarios"]["recs"]["rps"] / report["ceiling"]["rps"]
    assert report["ratio_recs_to_ceiling"] == pytest.approx(ratio, abs=0.001)
    assert set(report["cpu_cores"]) == set(report["saturated"]) == {"recs", "feedback", "ceiling"}
    for cores in report["cpu_cores"].values():
        assert set(cores) == {"load_generator", "server", "event_loop"}
        assert 0 < cores["event_loop"] <= cores["server"]
    per_request = report["server_cpu_us_per_request"]
    assert set(per_request) == {"recs", "feedback", "ceiling"} and min(per_request.values()) > 0
    assert report["writes_per_commit"]["feedback"] >= 1
    path = report["write_path_ms"]["feedback"]
    assert 0 < path["commit_ms"] <= path["wait_ms"]
    assert {"fastapi", "uvicorn", "locust"} <= set(report["environment"]["packages"])
    targets = report["targets"]
    assert set(targets) == {"recs_ratio_to_ceiling", "recs_p99_ms", "feedback_p99_ms", "errors"}
    assert targets["recs_ratio_to_ceiling"]["value"] == report["ratio_recs_to_ceiling"]
    assert targets["feedback_p99_ms"]["value"] == report["scenarios"]["feedback"]["p99_ms"]
    assert targets["errors"] == {"value": 0, "target": "== 0", "met": True}


def test_each_target_is_judged_on_the_run_and_only_when_its_scenario_ran() -> None:
    def stats(p99: float, errors: int = 0) -> dict[str, float | int]:
        return {"rps": 100.0, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": p99, "errors": errors}

    checks = bench_serve.target_checks(
        {"recs": stats(25.0), "feedback": stats(21.0, errors=2)}, stats(3.0, errors=1), 0.6
    )
    assert checks == {
        "recs_ratio_to_ceiling": {"value": 0.6, "target": ">= 0.6", "met": True},
        "recs_p99_ms": {"value": 25.0, "target": "<= 25", "met": True},
        "feedback_p99_ms": {"value": 21.0, "target": "<= 20", "met": False},
        "errors": {"value": 3, "target": "== 0", "met": False},
    }
    only_similar = bench_serve.target_checks({"similar": stats(9.0)}, stats(3.0), 0.0)
    assert only_similar == {"errors": {"value": 0, "target": "== 0", "met": True}}


def test_locust_statistics_become_the_issue_9_shape(tmp_path: Path) -> None:
    stats = tmp_path / "x_stats.csv"
    stats.write_text(LOCUST_CSV)
    parsed = bench_serve.parse_locust_stats(stats)
    assert parsed == {"rps": 244.1, "p50_ms": 120.0, "p95_ms": 250.0, "p99_ms": 580.0, "errors": 2}
    assert tuple(parsed) == bench_serve.STAT_KEYS


def test_empty_locust_statistics_are_an_error(tmp_path: Path) -> None:
    stats = tmp_path / "x_stats.csv"
    stats.write_text(
        LOCUST_CSV.splitlines()[0] + "\n,Aggregated,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,"
        "N/A,N/A,N/A\n"
    )
    with pytest.raises(ConfigError, match="no requests"):
        bench_serve.parse_locust_stats(stats)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenarios", "recs,nope"], "unknown"),
        (["--concurrency", "0"], "at least 1"),
        (["--profile", "similar", "--scenarios", "recs"], "needs that scenario"),
    ],
)
def test_bad_options_are_config_errors(
    tmp_path: Path, toy_bundles: Path, argv: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        bench_serve.run(parse(["--bundle", str(toy_bundles), *argv]))


def test_a_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExplainrecError, match="no bundle"):
        bench_serve.run(parse(["--bundle", str(tmp_path / "nowhere")]))


def test_ceiling_body_has_the_requested_size(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = count_tracer_provider_lookups(monkeypatch)
    monkeypatch.setenv(bench_serve.CEILING_BYTES_ENV, "1420")
    with TestClient(bench_serve.ceiling_app()) as client:
        response = client.get("/ceiling")
    assert response.status_code == 200 and len(response.content) == 1420
    assert json.loads(response.content)["pad"].startswith("x")
    # Served as the service is by default: no per-request look for OpenTelemetry providers.
    assert asked == []


def test_profile_summary_leaves_idle_threads_out(tmp_path: Path) -> None:
    collapsed = tmp_path / "p.txt"
    collapsed.write_text(
        "run (a.py:1);WorkerThread.run (anyio/_backends/_asyncio.py:1113);"
        "Condition.wait (threading.py:327) 900\n"
        "run (a.py:1);get_principal (backend/deps.py:150);do_execute (sqlalchemy/engine/default.py:1) 60\n"
        "run (a.py:1);recommend (backend/recommender.py:177);search (faiss/__init__.py:9) 40\n"
    )
    summary = bench_serve.summarize_profile(collapsed)
    assert "100 busy thread-samples (900 idle left out)" in summary
    assert " 60.0%  database" in summary and " 40.0%  vector math" in summary
    assert " 60.0%  get_principal (backend/deps.py:150)" in summary


def test_cpu_accounting_sees_this_process_burn_cpu() -> None:
    import os

    from backend.bench_serve import process_cpu_seconds

    before = process_cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert process_cpu_seconds([os.getpid()]) - before >= 0.1
    assert process_cpu_seconds([2**22 + 12345]) == 0.0  # a pid that does not exist


def test_the_event_loop_share_counts_the_main_thread_alone() -> None:
    import os
    import threading

    from backend.bench_serve import main_thread_cpu_seconds, process_cpu_seconds

    def spin() -> None:
        deadline = time.thread_time() + 0.3
        while time.thread_time() < deadline:
            pass

    main_before, process_before = main_thread_cpu_seconds(os.getpid()), process_cpu_seconds([os.getpid()])
    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()  # the main thread sleeps here
    assert process_cpu_seconds([os.getpid()]) - process_before >= 0.2
    assert main_thread_cpu_seconds(os.getpid()) - main_before < 0.1
    before = main_thread_cpu_seconds(os.getpid())
    spin()
    assert main_thread_cpu_seconds(os.getpid()) - before >= 0.2
    assert main_thread_cpu_seconds(2**22 + 12345) == 0.0


def test_the_event_loop_share_never_exceeds_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel rounds a thread's and its process's CPU times to clock ticks apart, so the main
    thread can read a tick above the process (CI once saw 0.46 cores of loop in 0.45 of server)."""
    import os
    from types import SimpleNamespace

    tick = 1 / os.sysconf("SC_CLK_TCK")
    reads = iter([0.0, 10 * tick])  # the main thread's time before and after the run
    monkeypatch.setattr(bench_serve, "main_thread_cpu_seconds", lambda pid: next(reads))
    monkeypatch.setattr(bench_serve, "process_cpu_seconds", lambda pids: 0.0)  # idle process
    server = SimpleNamespace(process=SimpleNamespace(pid=os.getpid()), worker_pids=lambda: [os.getpid()])
    _, cores, _ = bench_serve.measured(lambda: {"rps": 1.0}, server, 1)  # type: ignore[arg-type]
    assert cores["server"] == cores["event_loop"] == 0.0


def test_seeded_sessions_sign_in_the_bench_shoppers(tmp_path: Path, toy_bundles: Path) -> None:
    from backend.app import create_app
    from backend.settings import Settings

    key, cookies = bench_serve.seed_database(tmp_path, ["u00", "u03"])
    with TestClient(create_app(Settings(workdir=tmp_path, bundle_dir=toy_bundles))) as client:
        for user_id, cookie in zip(["u00", "u03"], cookies, strict=True):
            response = client.get("/api/v1/recommendations?k=3&explain=true", headers={"Cookie": cookie})
            assert response.status_code == 200 and response.json()["user_id"] == user_id
            assert response.json()["strategy"] == "personalized"
        feedback = {"user_id": "u00", "item_id": "i01", "event": "click"}
        assert client.post("/api/v1/feedback", json=feedback, headers={"X-API-Key": key}).status_code == 201


SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=300
    )


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), SCRIPTS / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_routing = load_script("bench_routing.py")


def timings(done: subprocess.CompletedProcess[str], unit: str) -> dict[str, float]:
    """Each printed `<scenario> <number> <unit>` line, after checking the script succeeded."""
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.split()[0]: float(line.split()[1]) for line in done.stdout.splitlines() if unit in line}


def test_the_in_process_app_bench_times_every_scenario(toy_bundles: Path) -> None:
    done = run_script("bench_app.py", "--bundle", str(toy_bundles), "--requests", "5", "--rounds", "1")
    timed = timings(done, "µs/request")
    assert set(timed) == {
        "recs",
        "recs_explain",
        "shopper",
        "similar",
        "item",
        "ceiling",
        "feedback",
        "feedback_x32",
        "explained_first",
    }
    assert all(value > 0 for value in timed.values())
    # Writes sent together share commits; one at a time, each has its own.
    per_commit = {
        line.split()[0]: float(line.split("(")[1].split()[0])
        for line in done.stdout.splitlines()
        if "per commit" in line
    }
    assert per_commit["feedback"] == 1.0 and per_commit["feedback_x32"] > 1.0


def test_the_app_bench_pairs_rounds_with_a_changed_setting(toy_bundles: Path) -> None:
    args = ("--bundle", str(toy_bundles), "--requests", "3", "--rounds", "2")
    done = run_script("bench_app.py", *args, "--compare", "opentelemetry=true")
    assert done.returncode == 0, done.stderr[-2000:]
    paired = {line.split()[0] for line in done.stdout.splitlines() if "paired change" in line}
    # Every scenario of the app itself; the ceiling and the first explained lists are not paired.
    assert paired == {"recs", "recs_explain", "shopper", "similar", "item", "feedback", "feedback_x32"}
    wrong = run_script("bench_app.py", *args, "--compare", "no_such_setting=1")
    assert wrong.returncode != 0 and "Settings field" in wrong.stderr and "Traceback" not in wrong.stderr
    invalid = run_script("bench_app.py", *args, "--compare", "opentelemetry=maybe")
    assert invalid.returncode != 0 and "valid boolean" in invalid.stderr and "Traceback" not in invalid.stderr


def test_the_recommender_bench_times_every_scenario(toy_bundles: Path, tmp_path: Path) -> None:
    done = run_script("bench_recommender.py", "--bundle", str(toy_bundles), "--calls", "5", "--rounds", "2")
    timed = timings(done, "µs/call")
    assert set(timed) == {"top10", "explained", "explained_first", "cold_start"}
    assert all(value > 0 for value in timed.values())
    missing = run_script("bench_recommender.py", "--bundle", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no bundle could be loaded" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_history_sums_bench_times_both_ways_for_every_shape() -> None:
    done = run_script("bench_history_sums.py", "--rows", "300", "--dims", "8,4")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines()[1:-1]]
    assert len(rows) == 11 and all(len(row) == 6 and row[-1] in ("gathered", "matrix") for row in rows)
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
    assert done.stdout.splitlines()[-1] == "the tower uses the matrix when cells per entry < 40"


def test_the_routing_bench_times_both_layouts_on_every_path() -> None:
    done = run_script("bench_routing.py", "--requests", "3", "--rounds", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines()]
    assert [row[1] for row in rows] == [path for path, _ in bench_routing.REQUESTS]
    assert all(row[2] in ("(401)", "(503)") and float(row[4]) > 0 and float(row[6]) > 0 for row in rows)


def test_the_routing_bench_rebuilds_the_nested_layout_in_the_old_order(tmp_path: Path) -> None:
    from fastapi.routing import _IncludedRouter

    app = bench_routing.nested_app(tmp_path)
    kinds = [type(route).__name__ for route in app.router.routes]
    included = [i for i, route in enumerate(app.router.routes) if isinstance(route, _IncludedRouter)]
    assert len(included) == len(API_ROUTERS) and included == list(range(4, 4 + len(API_ROUTERS)))
    assert kinds[:4] == ["Route"] * 4 and kinds[-1] == "FrontendMount"


def test_the_store_bench_times_each_batch_size() -> None:
    done = run_script("bench_store.py", "--batches", "1,3", "--commits", "2", "--rounds", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines()]
    assert [row[1] for row in rows] == ["1", "3"] and all(float(row[2]) > 0 for row in rows)


def test_the_store_bench_times_the_loops_call_in_both_checkpoint_modes() -> None:
    done = run_script("bench_store.py", "--latency", "5", "--batches", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and "SQLite's checkpoints" in lines[0] and "checkpoint thread" in lines[1]
    assert all(" of 5 over 3 ms" in line and "p99" in line for line in lines)


def test_saturation_names_what_used_all_it_can() -> None:
    # Round seven's default run: locust bounded the cached recs and the ceiling, the server the
    # writes, both the similar items.
    def full(locust: float, server: float, workers: int = 1) -> list[str]:
        return bench_serve.saturated({"load_generator": locust, "server": server}, workers, cpus=2)

    assert full(0.97, 0.57) == ["load_generator"]
    assert full(0.61, 0.89) == ["server"]
    assert full(0.90, 0.91) == ["load_generator", "server", "machine"]
    assert full(0.55, 0.84) == []
    # Two workers on two cores (16:41 UTC, feedback): neither worker fills its core, the
    # machine is full.
    assert full(0.64, 1.11, workers=2) == ["machine"]
    assert full(0.50, 1.10, workers=2) == []


def test_write_path_figures_come_from_the_metrics_text() -> None:
    def exposition(writes: float, commits: float, commit_s: float, wait_s: float, waits: float) -> str:
        return (
            "# HELP explainrec_feedback_commit_writes Feedback writes stored per database commit.\n"
            'explainrec_feedback_commit_writes_bucket{le="1.0"} 2.0\n'
            f"explainrec_feedback_commit_writes_count {commits}\n"
            f"explainrec_feedback_commit_writes_sum {writes}\n"
            f"explainrec_feedback_commit_seconds_count {commits}\n"
            f"explainrec_feedback_commit_seconds_sum {commit_s}\n"
            f"explainrec_feedback_wait_seconds_count {waits}\n"
            f"explainrec_feedback_wait_seconds_sum {wait_s}\n"
        )

    before = bench_serve.parse_write_path(exposition(40.0, 3.0, 0.006, 0.3, 40.0))
    assert before == {"writes": (40.0, 3.0), "commit_s": (0.006, 3.0), "wait_s": (0.3, 40.0)}
    after = bench_serve.parse_write_path(exposition(140.0, 13.0, 0.026, 1.3, 140.0))
    assert bench_serve.write_path_between(before, after) == {
        "writes_per_commit": 10.0,
        "commit_ms": 2.0,
        "wait_ms": 10.0,
    }
    assert bench_serve.write_path_between(after, after) is None  # nothing committed in between
    empty = bench_serve.parse_write_path("")
    assert empty == {"writes": (0.0, 0.0), "commit_s": (0.0, 0.0), "wait_s": (0.0, 0.0)}


def test_the_mixed_scenario_reports_its_reads_and_writes_apart(tmp_path: Path) -> None:
    header, _, _ = LOCUST_CSV.splitlines()
    read = "GET,mixed_read,900,0,10,12.0,1.0,90.0,1400.0,45.0,0.0,10,11,12,13,15,20,25,30,60,90,90"
    write = "POST,mixed_write,100,1,60,62.0,5.0,150.0,200.0,5.0,0.05,60,65,70,75,90,110,120,140,150,150,150"
    total = ",Aggregated,1000,1,11,17.0,1.0,150.0,1280.0,50.0,0.05,11,12,13,14,20,60,90,100,140,150,150"
    (tmp_path / "locust-MixedUser_stats.csv").write_text("\n".join([header, read, write, total]) + "\n")
    parts = bench_serve.mixed_parts(tmp_path)
    assert parts["read"] == {"rps": 45.0, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0, "errors": 0}
    assert parts["write"] == {"rps": 5.0, "p50_ms": 60.0, "p95_ms": 110.0, "p99_ms": 140.0, "errors": 1}
    assert bench_serve.parse_locust_stats(tmp_path / "locust-MixedUser_stats.csv")["rps"] == 50.0
    (tmp_path / "locust-MixedUser_stats.csv").write_text("\n".join([header, read, total]) + "\n")
    with pytest.raises(ConfigError, match="no 'mixed_write' requests"):
        bench_serve.mixed_parts(tmp_path)
