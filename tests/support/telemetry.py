"""Count FastAPI's per-request look for the global OpenTelemetry tracer provider."""

from __future__ import annotations

import pytest


def count_tracer_provider_lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time anything asks OpenTelemetry for its tracer provider
    (FastAPI's native telemetry does on every request unless it is configured off)."""
    from opentelemetry import trace

    asked: list[int] = []
    real = trace.get_tracer_provider

    def counting() -> trace.TracerProvider:
        asked.append(1)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counting)
    return asked
