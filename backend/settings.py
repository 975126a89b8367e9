"""The service's one typed settings object, read from `EXPLAINREC_*` environment variables.

EXPLAINREC_WORKDIR=artifacts              bundles in <workdir>/bundles, database beside them
EXPLAINREC_BUNDLE_DIR=artifacts/bundles   a bundles root (follows LATEST) or one version dir
EXPLAINREC_DATABASE_URL=postgresql+psycopg://user:pw@host/db
EXPLAINREC_EXPLAINER=template|llm|openai
EXPLAINREC_DEMO_MODE=true                 lets the UI sign in as a bundle shopper without a password
EXPLAINREC_CORS_ORIGINS='["https://shop.example"]'   CORS stays closed when empty
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig

# FastAPI's own defaults (all on) check the global OpenTelemetry providers on every request. The
# app passes this unless `opentelemetry` is set, and so does the benchmark's ceiling app, so
# that the two are compared on equal terms.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}

# The repository's web UI; a Vite-style build output in frontend/dist wins over the sources.
_REPO_FRONTEND = Path(__file__).resolve().parent.parent / "frontend"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXPLAINREC_", extra="ignore")

    workdir: Path = Field(
        default=Path("artifacts"), description="Root of bundles and the default SQLite database."
    )
    bundle_dir: Path | None = Field(
        default=None, description="Bundles root or version dir; default <workdir>/bundles."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite <workdir>/explainrec.db."
    )
    migrate_on_startup: bool = Field(
        default=True, description="Run Alembic upgrade head when the app starts."
    )

    explainer: Literal["template", "llm", "openai"] = "template"
    explain_timeout_s: float = Field(
        default=8.0, gt=0, description="LLM budget per request before the template answers instead."
    )
    llm_backend: Literal["transformers", "llamacpp"] = Field(
        default="transformers", description="How explainer=llm runs the shipped SmolLM2 model."
    )
    openai_base_url: str | None = Field(
        default=None, description="explainer=openai: an OpenAI-compatible server."
    )
    openai_model: str | None = None
    openai_api_key: SecretStr | None = Field(default=None, description="Never logged or echoed.")

    demo_mode: bool = Field(
        default=False, description="Allow signing in as any bundle shopper without a password."
    )
    frontend_dir: Path | None = Field(
        default=None, description="Static web UI served at /; default frontend/."
    )

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    session_ttl_hours: float = Field(default=24 * 7, gt=0)
    cookie_secure: bool = Field(default=False, description="Mark cookies Secure (set true behind HTTPS).")
    cors_origins: list[str] = Field(default_factory=list)

    # Per minute, per client IP and per credential; in-process, so each replica counts on its own.
    rate_limit_auth_per_minute: int = Field(default=30, ge=1)
    rate_limit_feedback_per_minute: int = Field(default=600, ge=1)
    retry_after_s: int = Field(
        default=5, ge=1, description="Retry-After sent with 503 when the database is down."
    )

    log_level: str = "INFO"
    access_log: bool = Field(
        default=False,
        description="uvicorn's per-request log line (costs ~10 % of throughput; /metrics counts requests).",
    )
    api_key_cache_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a worker reuses an API-key check where the database cannot signal changes "
        "(PostgreSQL): a revoked key stops working within this time. SQLite signals every commit.",
    )
    freeze_heap: bool = Field(
        default=True,
        description="After loading a bundle, collect garbage once and exclude the survivors from "
        "later collections (gc.freeze): no 60-120 ms collector pauses mid-request.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry spans, metrics and logs through the global "
        "providers (install and configure an OpenTelemetry SDK). Off, no request asks whether a "
        "provider is configured (12-20 µs a request; docs/benchmarks.md, round six).",
    )
    response_cache: bool = Field(
        default=True,
        description="Answer a repeated request for recommendations (any read key, or the same "
        "signed-in shopper) from memory until the database commits or the bundle changes "
        "(SQLite only; backend/readcache.py).",
    )

    def resolved_bundle_dir(self) -> Path:
        return self.bundle_dir if self.bundle_dir is not None else self.workdir / "bundles"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.workdir / 'explainrec.db').resolve()}"

    def resolved_frontend_dir(self) -> Path | None:
        base = self.frontend_dir if self.frontend_dir is not None else _REPO_FRONTEND
        for candidate in (base / "dist", base):
            if (candidate / "index.html").is_file():
                return candidate
        return None
