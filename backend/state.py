"""What the running app holds: settings, store, metrics, rate limiters and the current Recommender.

Reload builds the new Recommender completely off to the side, then swaps one reference.
Requests that already picked up the old one (through the dependency) finish on it; a bundle
that fails to load leaves the old one serving and its error visible on /readyz.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backend.errors import without_paths
from backend.feedbackwriter import FeedbackWriter
from backend.hotcache import DatabaseWatch, HotCache
from backend.metrics import Metrics
from backend.ratelimit import RateLimiter
from backend.recommender import Recommender
from backend.settings import Settings
from backend.store import Store, now
from embeddings.bundle import Bundle, resolve_bundle_dir
from explain.base import Explainer
from explain.template import TemplateExplainer
from explainrec.errors import BundleError

log = logging.getLogger("explainrec.backend")


def make_explainer(settings: Settings, bundle: Bundle) -> Explainer:
    """The configured explainer for one bundle; LLM text is grounding-checked against its catalogue,
    cached per evidence, and replaced by the template on error, timeout or failed check."""
    if settings.explainer == "template":
        return TemplateExplainer()
    from backend.evidence import catalogue_checker
    from explain.cache import CachedExplainer
    from explain.llm import LLMExplainer
    from explain.llm_backends import LLMSettings

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    llm_settings = LLMSettings(
        backend="openai" if settings.explainer == "openai" else settings.llm_backend,
        timeout_s=settings.explain_timeout_s,
        openai_base_url=settings.openai_base_url,
        openai_model=settings.openai_model,
        openai_api_key=key,
    )
    # The same check `evaluate-explanations` measures with.
    return CachedExplainer(LLMExplainer(llm_settings, checker=catalogue_checker(bundle)), bundle.version)


YOUNG_GC_THRESHOLD = 20_000


def freeze_long_lived_objects() -> None:
    """Exclude what is alive now (modules, the served bundle) from garbage collection passes.

    A full collection walks every tracked object: with a bundle loaded that is some 300 000, a
    60-120 ms pause in the middle of requests (measured: feedback's p99 at 32 users was these
    pauses). Frozen objects are still freed by reference counting. The collect first frees the
    previous bundle's cycles, so reloads do not accumulate them.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    # Young collections every 700 allocations promote the objects of requests in flight, and
    # those promotions trigger a full pass over the unfrozen rest (~10 ms at 35k objects) every
    # few hundred ms under write load; every 20 000 lets request objects die young instead.
    gc.set_threshold(YOUNG_GC_THRESHOLD, 10, 10)


@dataclass
class ServiceState:
    settings: Settings
    store: Store
    metrics: Metrics
    auth_limiter: RateLimiter
    feedback_limiter: RateLimiter
    recommender: Recommender | None = None
    cache: HotCache = field(default_factory=lambda: HotCache(DatabaseWatch(None)))
    feedback_writer: FeedbackWriter = field(init=False)
    loaded_at: datetime | None = None
    last_load_error: str | None = None
    warm_up_thread: threading.Thread | None = None
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.feedback_writer = FeedbackWriter(lambda: self.store, on_commit=self._observe_commit)

    def _observe_commit(self, writes: int, seconds: float) -> None:
        self.metrics.feedback_commit_writes.observe(writes)
        self.metrics.feedback_commit_seconds.observe(seconds)

    def bundles_root(self) -> Path:
        root = self.settings.resolved_bundle_dir()
        # A version dir given directly: its parent holds the siblings a reload may pick.
        return root.parent if (root / "manifest.json").is_file() else root

    def load(self, version: str | None = None) -> Recommender:
        """Load a bundle and make it the one served. Raises BundleError, leaving the old one."""
        with self._reload_lock:
            target = self._target(version)
            try:
                bundle = Bundle.load(target)
                recommender = Recommender(bundle, make_explainer(self.settings, bundle), TemplateExplainer())
            except BundleError as exc:
                # Clients read this on /readyz: no absolute paths of the server's filesystem.
                self.last_load_error = without_paths(str(exc), self.bundles_root())
                self.metrics.reloads.labels("refused").inc()
                log.error("bundle refused: %s", exc)
                raise
            self.recommender = recommender  # the swap: one reference assignment
            self.loaded_at = now()
            self.last_load_error = None
            self.metrics.serving(recommender.version)
            self.metrics.reloads.labels("ok").inc()
            log.info("serving bundle %s from %s", recommender.version, recommender.bundle.path)
            if self.settings.freeze_heap:
                freeze_long_lived_objects()
            self.warm_up_thread = self.warm_explainer_in_background(recommender)
            return recommender

    def warm_explainer_in_background(self, recommender: Recommender) -> threading.Thread | None:
        """Load a configured language model now, off the start-up path, so the first explained
        request does not pay for it (until it is ready, requests fall back to the template)."""
        if self.settings.explainer == "template":
            return None
        explainer: object = recommender.explainer
        inner = getattr(explainer, "inner", None)  # CachedExplainer wraps the LLM one
        warm = getattr(explainer, "warm_up", None) or getattr(inner, "warm_up", None)
        if warm is None:
            return None

        def run() -> None:
            try:
                warm()
                log.info("explainer %s warmed up for %s", self.settings.explainer, recommender.version)
            except Exception as exc:  # a failed warm-up only means the first request pays or falls back
                log.warning("explainer warm-up failed: %s", exc)

        thread = threading.Thread(target=run, name="explainer-warm-up", daemon=True)
        thread.start()
        return thread

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
