"""The Admin index's pipeline-health line: what is wrong, in words, and where to look."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse

from campaigns.authoring.durations import duration_words
from campaigns.operations.health import Check, readiness_checks, sending_oldest_seconds

# The stale-sending sweep runs every 10 s in every dispatcher (campaigns.sending.dispatcher.SLOW_CHECKS_EVERY).
STUCK_MARGIN = 60.0


@dataclass(frozen=True)
class PipelineProblem:
    name: str
    text: str
    link_text: str
    url: str


def _words(seconds: float | None) -> str:
    return duration_words(timedelta(seconds=round(seconds or 0)))


def _problem(check: Check) -> PipelineProblem | None:
    sends = reverse("admin:campaigns_send_changelist")
    if check.name == "dispatcher":
        since = "has ever checked in" if check.value is None else f"has checked in for {_words(check.value)}"
        return PipelineProblem(
            check.name,
            f"No worker is running: no qcluster dispatcher {since}. New events are not matched and due emails "
            "are not sent until one runs (`manage.py qcluster`).",
            "Emails waiting",
            f"{sends}?state__exact=scheduled",
        )
    if check.name == "event_lag":
        return PipelineProblem(
            check.name,
            f"Matching is behind: the oldest new event has waited {_words(check.value)} to be matched "
            f"(the limit is {_words(check.threshold)}).",
            "Events waiting",
            f"{reverse('admin:events_event_changelist')}?processed=no",
        )
    if check.name == "send_lateness":
        return PipelineProblem(
            check.name,
            f"Emails are leaving late: the most overdue one is {_words(check.value)} past its time "
            f"(the limit is {_words(check.threshold)}).",
            "Emails waiting",
            f"{sends}?state__exact=scheduled",
        )
    return None


def pipeline_problems_describe(*, now: datetime) -> list[PipelineProblem]:
    """What the readiness checks found wrong, and an email stuck in flight that no sweep has settled."""
    problems = [p for c in readiness_checks(now=now) if not c.ok and (p := _problem(c)) is not None]
    in_flight = sending_oldest_seconds(now=now)
    # Every dispatcher turns a `sending` row older than SENDING_STALE_AFTER into `unknown` within
    # seconds (then the attention line counts it); one much older means no sweep is running.
    if in_flight > settings.SENDING_STALE_AFTER + STUCK_MARGIN:
        problems.append(
            PipelineProblem(
                "stuck",
                f"An email has been sending for {_words(in_flight)}: its worker stopped, and no dispatcher has "
                "marked it unknown yet.",
                "Emails sending",
                f"{reverse('admin:campaigns_send_changelist')}?state__exact=sending",
            )
        )
    return problems
