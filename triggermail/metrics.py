"""Prometheus metrics: the counters processes keep, and the registry /metrics exposes.

prometheus-client runs in multiprocess mode (settings set PROMETHEUS_MULTIPROC_DIR before it is
imported): each process — every gunicorn worker, every django-q2 worker — writes its counts to its
own files in that directory, and a scrape adds up the files of every process on the host, so the
answer does not depend on which gunicorn worker took the request. Gauges that describe the
pipeline are not kept by processes at all: they are read from the database at scrape time
(campaigns.operations.health_metrics), so every process agrees on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

EVENTS_INGESTED = Counter(
    "triggermail_events_ingested",
    "Messages posted to the ingest API, by message type and outcome (stored, duplicate, rejected).",
    ["type", "outcome"],
)
INGEST_RATE_LIMITED = Counter(
    "triggermail_ingest_rate_limited",
    "Ingest requests answered 429 because their write key was over its rate limit, by write key id.",
    ["write_key"],
)
PROVIDER_CALLS = Histogram(
    "triggermail_provider_call_seconds",
    "Duration of provider (SendGrid) calls, by outcome class (sent, not_sent, ambiguous, refused).",
    ["outcome"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# Labelled, like every counter here: prometheus-client's multiprocess mode makes the file of a counter
# without labels when the module is imported, in every process, before its directory may exist.
CLUSTER_RESTARTS = Counter(
    "triggermail_cluster_restarts",
    "django-q2 clusters a qcluster restarted, by reason (stalled: workers started no task while tasks waited).",
    ["reason"],
)


def events_ingested_count(outcome: str, by_type: Mapping[str, int]) -> None:
    for kind, count in by_type.items():
        if count:
            EVENTS_INGESTED.labels(kind, outcome).inc(count)


def ingest_rate_limited_count(write_key_id: int) -> None:
    INGEST_RATE_LIMITED.labels(str(write_key_id)).inc()


def provider_call_observe(outcome: str, seconds: float) -> None:
    PROVIDER_CALLS.labels(outcome).observe(seconds)


def cluster_restart_count(reason: str) -> None:
    CLUSTER_RESTARTS.labels(reason).inc()


def metrics_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """A registry for one scrape: every process's files on this host, plus `extra` collectors."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    for collector in extra:
        registry.register(collector)
    return registry


def worker_metrics_serve(*, port: int, addr: str) -> None:
    """Serve this host's process metrics over HTTP (a worker host without a web process).

    prometheus-client's own server, in a thread; it carries no token, so it is bound to `addr`,
    a private interface. The pipeline gauges are left to the web's /metrics: every host reading
    them from the one database would only repeat them.
    """
    start_http_server(port, addr=addr, registry=metrics_registry())
