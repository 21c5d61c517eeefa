"""Prometheus metrics, one registry per app (no global state shared between apps or tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "faceproof_decisions",
            "Final decisions, one count per reason code",
            ["decision", "reason"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "faceproof_attempts",
            "Face-check attempts by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.liveness_rejects = Counter(
            "faceproof_liveness_rejects",
            "Clips judged not live, one count per liveness reason code",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "faceproof_request_seconds",
            "Request latency by route template",
            ["method", "route", "status"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
            registry=self.registry,
        )
        self.circuit_state = Gauge(
            "faceproof_circuit_state",
            "Circuit breaker of a remote dependency: 0 closed, 1 half-open, 2 open",
            ["dependency"],
            registry=self.registry,
        )
