"""Prometheus metrics, one registry per app so test apps never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "explainrec_request_duration_seconds",
            "Request latency by route template.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.model_info = Gauge(
            "explainrec_model_info",
            "1 for the bundle version being served.",
            ["version"],
            registry=self.registry,
        )
        self.explanations = Counter(
            "explainrec_explanations_total",
            "Explanations served by source.",
            ["source"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "explainrec_feedback_events_total",
            "Feedback events stored by type.",
            ["event"],
            registry=self.registry,
        )
        self.feedback_commit_writes = Histogram(
            "explainrec_feedback_commit_writes",
            "Feedback writes stored per database commit (backend/feedbackwriter.py's group commit).",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.feedback_commit_seconds = Histogram(
            "explainrec_feedback_commit_seconds",
            "Time the database took to store one committed batch of feedback writes.",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.feedback_wait_seconds = Histogram(
            "explainrec_feedback_wait_seconds",
            "Time a feedback write spent from joining the group commit to being back on the event "
            "loop with its outcome: queueing, its batch's commit, and the hand-offs between them.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.response_cache = Counter(
            "explainrec_response_cache_total",
            "API-key recommendation reads answered from memory (hit) or computed (miss).",
            ["result"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "explainrec_bundle_reloads_total",
            "Bundle reload attempts by outcome.",
            ["outcome"],
            registry=self.registry,
        )

    def serving(self, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)
