"""The pipeline's gauges, read from the database when Prometheus scrapes /metrics."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from campaigns.operations.health import (
    dispatcher_ages,
    event_lag_seconds,
    send_lateness_seconds,
    sending_oldest_seconds,
    sends_by_state,
)
from campaigns.sending.settlement import sends_needing_attention


class PipelineCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        try:
            gauges = _pipeline_gauges()
        except DatabaseError:
            # The counters of the processes are still worth scraping; say the database is not.
            gauges = []
        up = GaugeMetricFamily("triggermail_database_up", "1 when the database answered this scrape, else 0.")
        up.add_metric([], 1.0 if gauges else 0.0)
        yield up
        yield from gauges


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _pipeline_gauges() -> list[Metric]:
    now = timezone.now()
    sends = GaugeMetricFamily(
        "triggermail_sends", "Sends in the states that change or need a person, by state.", labels=["state"]
    )
    for state, count in sends_by_state().items():
        sends.add_metric([state], count)
    heartbeat = GaugeMetricFamily(
        "triggermail_dispatcher_heartbeat_age_seconds",
        "Per host, seconds since its freshest running dispatcher completed a pass.",
        labels=["host"],
    )
    for host, age in sorted(dispatcher_ages(now=now).items()):
        heartbeat.add_metric([host], age)
    return [
        _gauge(
            "triggermail_event_matching_lag_seconds",
            "How long the oldest unprocessed event has waited to be matched (0: none waits).",
            event_lag_seconds(now=now),
        ),
        _gauge(
            "triggermail_send_lateness_seconds",
            "How late the most overdue scheduled send is (0: none is overdue).",
            send_lateness_seconds(now=now),
        ),
        _gauge(
            "triggermail_send_in_flight_max_seconds",
            "How long the oldest `sending` send has been waiting for its provider call (0: none is).",
            sending_oldest_seconds(now=now),
        ),
        sends,
        _gauge(
            "triggermail_sends_needing_attention",
            "Unknown or abandoned sends not yet resent: a person must look.",
            sends_needing_attention().count(),
        ),
        heartbeat,
    ]
