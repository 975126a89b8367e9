"""Property-based API fuzzing with schemathesis against the service's own OpenAPI schema.

Every operation gets valid and invalid inputs (positive and negative generation modes), first
anonymously and then with an admin API key so protected routes run past their 401. Checks: no
5xx, the status code is documented, the content type and body match the documented schema.
The app runs in-process (ASGI) on the real toy bundle and a fresh SQLite file.

    pytest tests/reliability/test_fuzz.py -q
    FUZZ_EXAMPLES=200 pytest tests/reliability/test_fuzz.py -q     # a longer run
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.app import create_app
from tests.reliability.conftest import make_settings, mint_key

# Per operation and per credential variant; bounded so the CI run stays short on 2 cores.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Rate limits would turn later cases into 429s and hide the routes' own behaviour.
UNLIMITED = {
    "rate_limit_auth_per_minute": 1_000_000,
    "rate_limit_feedback_per_minute": 1_000_000,
    "demo_mode": True,
}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, toy_bundles: Path) -> Iterator[tuple[Any, str]]:
    """The app with its lifespan run (bundle loaded, database migrated) and an admin key."""
    workdir = tmp_path_factory.mktemp("fuzz")
    app = create_app(make_settings(workdir, toy_bundles, **UNLIMITED))
    with TestClient(app) as client:
        admin = mint_key(client, "read", "feedback", "admin")
        yield app, admin


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[Any, str]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app[0])


def _fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> int:
    """Run bounded hypothesis cases on one operation; returns how many cases ran."""
    ran = 0

    @given(case=operation.as_strategy(generation_mode=mode, headers=headers or None))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case: Any) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(checks=CHECKS)

    run()
    return ran


def signup_409_documented(api_schema: Any) -> bool:
    return "409" in api_schema.raw_schema["paths"]["/api/v1/auth/signup"]["post"]["responses"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("credentials", ["anonymous", "admin-key"])
def test_every_operation_survives_fuzzing(
    api_schema: Any, fuzz_app: tuple[Any, str], mode: GenerationMode, credentials: str, record_property: Any
) -> None:
    headers = {"X-API-Key": fuzz_app[1]} if credentials == "admin-key" else {}
    failures: list[str] = []
    cases = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        try:
            cases += _fuzz_operation(operation, mode, headers)
        except Unsatisfiable:
            # No parameters or body to break: nothing negative exists for this operation.
            assert mode == GenerationMode.NEGATIVE, f"{operation.path}: no valid input could be generated"
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis failures are BaseExceptionGroups
            name = f"{operation.method.upper()} {operation.path}"
            failures.append(f"{name}: {exc}")
    record_property("fuzz_cases", cases)
    print(f"fuzz {credentials}/{mode}: {cases} cases")
    assert not failures, "\n\n".join(failures)


def test_schema_covers_every_route(api_schema: Any) -> None:
    """The fuzzer only reaches what the schema documents: every API route must be in it."""
    documented = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    served = {
        (method, route.path)
        for route in api_schema.app.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
        if route.include_in_schema
    }
    assert len(served) >= 15, sorted(served)  # the app's own routes, not a nested router's
    assert served <= documented, f"routes missing from the OpenAPI schema: {sorted(served - documented)}"
    assert len(documented) >= 15, sorted(documented)


def test_signup_conflict_is_documented(api_schema: Any) -> None:
    """Reproducer for a fuzz finding: signup answers 409 for a taken username (and demo sign-in
    409 when its record cannot be created), so the schema must list 409 for both."""
    assert signup_409_documented(api_schema)
    assert "409" in api_schema.raw_schema["paths"]["/api/v1/auth/demo"]["post"]["responses"]
