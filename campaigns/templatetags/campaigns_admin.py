"""Template tags for the TriggerMail admin pages."""

from __future__ import annotations

from datetime import datetime, tzinfo

from django import template
from django.utils import timezone

from campaigns.operations.health_admin import PipelineProblem, pipeline_problems_describe
from campaigns.sending.settlement import sends_needing_attention, sends_sent_twice
from triggermail.times import time_text

register = template.Library()


@register.simple_tag
def sends_attention_count() -> int:
    # A tag rather than a context processor, so that only the index page pays for the query.
    return sends_needing_attention().count()


@register.simple_tag
def sends_twice_count() -> int:
    # Resends whose original SendGrid accepted after all: the risk of resending, shown where it is seen.
    return sends_sent_twice().count()


@register.filter
def when(value: datetime | None, zone: tzinfo | None = None) -> str:
    """`{{ send.due_at|when }}`: the one way Admin writes a time (`triggermail.times.time_text`)."""
    return time_text(value, zone=zone)


@register.simple_tag
def pipeline_problems() -> list[PipelineProblem]:
    # Also a tag, for the same reason: only the index page pays for its few indexed queries.
    return pipeline_problems_describe(now=timezone.now())
