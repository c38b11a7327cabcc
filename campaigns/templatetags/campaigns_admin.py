"""Template tags for the TriggerMail admin pages."""

from __future__ import annotations

from django import template

from campaigns.sending.settlement import sends_needing_attention

register = template.Library()


@register.simple_tag
def sends_attention_count() -> int:
    # A tag rather than a context processor, so that only the index page pays for the query.
    return sends_needing_attention().count()
