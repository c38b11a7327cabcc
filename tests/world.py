"""A small named world for the matching, scheduling and delivery tests: templates, rules,
timestamped track calls and the django-q2 task rows they leave behind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine

from campaigns.models import Rule, Send, Template
from tests import baker_recipes
from tests.conftest import track

T0 = datetime.fromisoformat("2026-03-02T10:00:00+00:00")


def template_make(name: str = "Recovery", **fields: Any) -> Template:
    return baker_recipes.template.make(name=name, **fields)


def rule_make(name: str, trigger_event: str, *, template: Template | None = None, **fields: Any) -> Rule:
    return baker_recipes.rule.make(
        name=name, trigger_event=trigger_event, template=template or template_make(f"{name} template"), **fields
    )


def post_at(api: Any, when: datetime, messages: list[dict[str, Any]]) -> None:
    """Post a batch through the ingest API as if it were `when`."""
    with time_machine.travel(when, tick=False):
        assert api.batch(messages).status_code == 200


def track_at(event: str, user_id: str, at: datetime, *, message_id: str | None = None, **properties: Any) -> dict:
    """A track call that says when the user acted (Segment's `timestamp`)."""
    return {**track(event, user_id, message_id=message_id, **properties), "timestamp": at.isoformat()}


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def send_states() -> list[tuple[str, str]]:
    """(rule name, state) of every send, oldest first."""
    return [(s.rule.name, s.state) for s in Send.objects.select_related("rule").order_by("id")]


def queued_tasks() -> list[tuple[str, tuple[Any, ...]]]:
    """The django-q2 task rows waiting in the ORM broker: (function path, args)."""
    from django_q.models import OrmQ

    return [(q.task["func"], tuple(q.task["args"])) for q in OrmQ.objects.order_by("id")]


def decisions() -> list[tuple[str, str]]:
    """(event name, reason) of every decision, in event order."""
    from campaigns.models import Decision

    return [(d.event.name, d.reason) for d in Decision.objects.select_related("event").order_by("event_id", "rule_id")]


def queued_tasks_run() -> int:
    """Run the queued django-q2 tasks as a cluster worker would, removing their rows."""
    from django.utils.module_loading import import_string
    from django_q.models import OrmQ

    count = 0
    for row in OrmQ.objects.order_by("id"):
        task = row.task
        row.delete()
        func = task["func"]
        (import_string(func) if isinstance(func, str) else func)(*task["args"], **task.get("kwargs", {}))
        count += 1
    return count
