"""System checks that stop start-up when settings would allow an email to go out twice."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def queue_and_provider_timeouts(app_configs: Any, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    q = settings.Q_CLUSTER
    if q["timeout"] >= q["retry"]:
        errors.append(
            Error(
                f"Q_TIMEOUT ({q['timeout']}s) must be less than Q_RETRY ({q['retry']}s).",
                hint="django-q2 hands a task to a second worker after `retry` seconds while the first "
                "may still be running it; keep `timeout` below `retry` so the first is killed first.",
                id="triggermail.E001",
            )
        )
    if settings.PROVIDER_TIMEOUT >= q["timeout"]:
        errors.append(
            Error(
                f"PROVIDER_TIMEOUT ({settings.PROVIDER_TIMEOUT}s) must be less than Q_TIMEOUT ({q['timeout']}s).",
                hint="A provider call must end (and its outcome be recorded) before django-q2 kills the task.",
                id="triggermail.E002",
            )
        )
    if settings.SENDING_STALE_AFTER <= settings.PROVIDER_TIMEOUT:
        errors.append(
            Error(
                f"SENDING_STALE_AFTER ({settings.SENDING_STALE_AFTER}s) must exceed PROVIDER_TIMEOUT "
                f"({settings.PROVIDER_TIMEOUT}s).",
                hint="Otherwise a provider call still in flight would be marked unknown.",
                id="triggermail.E003",
            )
        )
    return errors
