"""A separate load process for the durability test: posts feedback events concurrently and
records each answer as it arrives, so a server killed mid-stream leaves an exact ledger.

    python -m tests.reliability.feedback_writer --url http://127.0.0.1:8000 --key erk_... \
        --events events.json --ledger ledger.txt --threads 8

events.json holds [{"user_id", "item_id", "event", "idempotency_key"}, ...]. Each ledger line is
`<idempotency_key> <HTTP status | ERR>`, flushed as soon as the answer (or the failure) is known.
"""

from __future__ import annotations

import argparse
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    events = json.loads(args.events.read_text("utf-8"))
    lock = threading.Lock()
    with (
        args.ledger.open("a", encoding="utf-8") as ledger,
        httpx.Client(base_url=args.url, headers={"X-API-Key": args.key}, timeout=10.0) as client,
    ):

        def send(event: dict[str, str]) -> None:
            try:
                response = client.post(
                    "/api/v1/feedback", json=event, headers={"Idempotency-Key": event["idempotency_key"]}
                )
                outcome = str(response.status_code)
            except httpx.HTTPError:
                outcome = "ERR"  # never acknowledged: the client must retry with the same key
            with lock:
                ledger.write(f"{event['idempotency_key']} {outcome}\n")
                ledger.flush()

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(send, events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
