"""What the running app holds: settings, store, metrics, rate limiters and the current Recommender.

Reload builds the new Recommender completely off to the side, then swaps one reference.
Requests that already picked up the old one (through the dependency) finish on it; a bundle
that fails to load leaves the old one serving and its error visible on /readyz.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backend.metrics import Metrics
from backend.ratelimit import RateLimiter
from backend.recommender import Recommender
from backend.settings import Settings
from backend.store import Store, now
from embeddings.bundle import resolve_bundle_dir
from explain.base import Explainer
from explain.template import TemplateExplainer
from explainrec.errors import BundleError, ConfigError

log = logging.getLogger("explainrec.backend")


def make_explainer(settings: Settings) -> Explainer:
    """The configured explainer; LLM explainers fall back to templates on their own errors."""
    if settings.explainer == "template":
        return TemplateExplainer()
    try:
        from explain import llm
    except ImportError as exc:
        raise ConfigError(f"EXPLAINREC_EXPLAINER={settings.explainer} needs explain.llm: {exc}") from exc
    factory = getattr(llm, "make_explainer", None)
    if factory is None:
        raise ConfigError("explain.llm has no make_explainer(kind, timeout_s); use EXPLAINREC_EXPLAINER=template")
    explainer: Explainer = factory(settings.explainer, timeout_s=settings.explain_timeout_s)
    return explainer


@dataclass
class ServiceState:
    settings: Settings
    store: Store
    metrics: Metrics
    auth_limiter: RateLimiter
    feedback_limiter: RateLimiter
    explainer: Explainer
    recommender: Recommender | None = None
    loaded_at: datetime | None = None
    last_load_error: str | None = None
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    def bundles_root(self) -> Path:
        root = self.settings.resolved_bundle_dir()
        # A version dir given directly: its parent holds the siblings a reload may pick.
        return root.parent if (root / "manifest.json").is_file() else root

    def load(self, version: str | None = None) -> Recommender:
        """Load a bundle and make it the one served. Raises BundleError, leaving the old one."""
        with self._reload_lock:
            target = self._target(version)
            try:
                recommender = Recommender.load(target, self.explainer, TemplateExplainer())
            except BundleError as exc:
                self.last_load_error = str(exc)
                self.metrics.reloads.labels("refused").inc()
                log.error("bundle refused: %s", exc)
                raise
            self.recommender = recommender  # the swap: one reference assignment
            self.loaded_at = now()
            self.last_load_error = None
            self.metrics.serving(recommender.version)
            self.metrics.reloads.labels("ok").inc()
            log.info("serving bundle %s from %s", recommender.version, recommender.bundle.path)
            return recommender

    def _target(self, version: str | None) -> Path:
        if version is None:
            return resolve_bundle_dir(self.settings.resolved_bundle_dir())
        root = self.bundles_root()
        # Only names of directories directly under the bundles root: no paths from clients.
        if "/" in version or "\\" in version or version.startswith(".") or not version.strip():
            raise BundleError(f"bad bundle version {version!r}: give a directory name under the bundles root")
        target = root / version
        if not target.is_dir():
            raise BundleError(f"no bundle version {version!r} under {root}")
        return target
