"""Template tags for the TriggerMail admin pages."""

from __future__ import annotations

from django import template
from django.utils import timezone

from campaigns.health_admin import PipelineProblem, pipeline_problems_describe
from campaigns.settlement import sends_needing_attention

register = template.Library()


@register.simple_tag
def sends_attention_count() -> int:
    # A tag rather than a context processor, so that only the index page pays for the query.
    return sends_needing_attention().count()


@register.simple_tag
def pipeline_problems() -> list[PipelineProblem]:
    # Also a tag, for the same reason: only the index page pays for its few indexed queries.
    return pipeline_problems_describe(now=timezone.now())
