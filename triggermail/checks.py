"""System checks that stop start-up when settings would allow an email to go out twice."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.db import InterfaceError, OperationalError

from triggermail.db_router import REPLICA, replica_configured
from triggermail.replica import replica_status


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
    if settings.CLUSTER_STALL_AFTER <= q["timeout"]:
        errors.append(
            Error(
                f"CLUSTER_STALL_AFTER ({settings.CLUSTER_STALL_AFTER}s) must exceed Q_TIMEOUT ({q['timeout']}s).",
                hint="Workers all busy with tasks that may run Q_TIMEOUT would otherwise look stalled, "
                "and the cluster would be restarted under them.",
                id="triggermail.E012",
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


def _webhook_verification_key() -> str:
    # What Anymail's webhook view will read, wherever it was configured.
    from anymail.utils import get_anymail_setting

    key = get_anymail_setting("tracking_webhook_verification_key", esp_name="SendGrid", default=None, allow_bare=True)
    return str(key or "")


def production_mode() -> bool:
    """Sending through SendGrid for real: a provider key and no DEBUG.

    Development (`make run` without SENDGRID_API_KEY, or DEBUG=true) writes email to files or is a
    person's own machine; anything else may email real people, so it must be configured safely.
    """
    return bool(settings.SENDGRID_API_KEY) and not settings.DEBUG


@register()
def webhook_security(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    key = _webhook_verification_key()
    if not key:
        if not production_mode():
            return []
        return [
            Error(
                "SENDGRID_WEBHOOK_VERIFICATION_KEY is not set, so anyone can post SendGrid events.",
                hint="A forged 'delivered' event would settle an unknown send as sent and hide it from the "
                "people who must decide about it. Turn on SendGrid's Signed Event Webhook (Settings → Mail "
                "Settings → Event Webhook → Security) and set SENDGRID_WEBHOOK_VERIFICATION_KEY to its "
                "public key (step by step: README, Sending through SendGrid). For development, set DEBUG=true or "
                "leave SENDGRID_API_KEY empty.",
                id="triggermail.E004",
            )
        ]
    try:
        serialization.load_der_public_key(base64.b64decode(key, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        return [
            Error(
                "SENDGRID_WEBHOOK_VERIFICATION_KEY is not a base64 public key.",
                hint="Copy the verification key from SendGrid's Event Webhook security settings as shown "
                "(base64, without the BEGIN/END PUBLIC KEY lines); otherwise every webhook request fails.",
                id="triggermail.E005",
            )
        ]
    return []


@register()
def settling_windows(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if settings.UNKNOWN_GRACE_SECONDS <= settings.SENDING_STALE_AFTER:
        errors.append(
            Error(
                f"UNKNOWN_GRACE_SECONDS ({settings.UNKNOWN_GRACE_SECONDS}s) must exceed SENDING_STALE_AFTER "
                f"({settings.SENDING_STALE_AFTER}s).",
                hint="A send is unknown only after it was sending for SENDING_STALE_AFTER; a shorter grace "
                "window would abandon it before SendGrid's events had any chance to arrive.",
                id="triggermail.E006",
            )
        )
    # Checked once the grace window itself is sound (E006), so that one mistake gives one error.
    elif settings.AMBIGUOUS_SEND_POLICY == "resend_when_webhook_live" and not (
        settings.SENDING_STALE_AFTER < settings.AMBIGUOUS_RESEND_AFTER <= settings.UNKNOWN_GRACE_SECONDS
    ):
        errors.append(
            Error(
                f"AMBIGUOUS_RESEND_AFTER ({settings.AMBIGUOUS_RESEND_AFTER}s) must exceed SENDING_STALE_AFTER "
                f"({settings.SENDING_STALE_AFTER}s) and be at most UNKNOWN_GRACE_SECONDS "
                f"({settings.UNKNOWN_GRACE_SECONDS}s).",
                hint="Shorter, a send would be resent before SendGrid's events had a chance to arrive; longer, "
                "it would be abandoned before it could be resent.",
                id="triggermail.E009",
            )
        )
    if settings.IDEMPOTENCY_KEY_DAYS < 2:
        errors.append(
            Error(
                f"IDEMPOTENCY_KEY_DAYS ({settings.IDEMPOTENCY_KEY_DAYS}) must be at least 2.",
                hint="A 'once per user per day' key must outlive the contact's local day, which ends up to "
                "26 hours after a UTC day in the farthest time zones; a pruned key lets a duplicate through.",
                id="triggermail.E007",
            )
        )
    return errors


@register()
def queue_retries(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    q = settings.Q_CLUSTER
    messages: list[CheckMessage] = []
    if q.get("max_attempts") != 1 or q.get("ack_failures") is not True:
        messages.append(
            Error(
                f"Q_CLUSTER must keep max_attempts=1 and ack_failures=True (it has max_attempts="
                f"{q.get('max_attempts')!r}, ack_failures={q.get('ack_failures')!r}).",
                hint="Rows are the source of truth and the dispatcher finds work again; a queue that re-runs "
                "failed tasks on its own hands the same delivery to workers again and again, out of sight.",
                id="triggermail.E008",
            )
        )
    if "redis" in q and settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        messages.append(
            Warning(
                "Q_BROKER=redis with SQLite: Redis is for several hosts, and several hosts need PostgreSQL.",
                hint="SQLite lives on one machine and ignores SKIP LOCKED; set DATABASE_URL=postgres://… "
                "or use Q_BROKER=orm on a single host.",
                id="triggermail.W001",
            )
        )
    return messages


# Schemes that run code or carry a whole document inside the link: never a link's scheme.
SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "data"})


@register()
def email_security_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """SAFE_LINK_SCHEMES and UNSUBSCRIBE_TOKEN_DAYS (README, Security)."""
    messages: list[CheckMessage] = []
    schemes = [str(scheme) for scheme in settings.SAFE_LINK_SCHEMES]
    bad = [s for s in schemes if s in SCRIPT_SCHEMES or not re.fullmatch(r"[a-z][a-z0-9+.\-]*", s)]
    if bad:
        messages.append(
            Error(
                f"SAFE_LINK_SCHEMES may not allow {', '.join(repr(s) for s in bad)}.",
                hint="List URL schemes such as http,https,mailto,tel; javascript:, vbscript: and data: links run "
                "code or carry a document of their own.",
                id="triggermail.E010",
            )
        )
    days = settings.UNSUBSCRIBE_TOKEN_DAYS
    if days < 1:
        messages.append(Error("UNSUBSCRIBE_TOKEN_DAYS must be at least 1.", id="triggermail.E011"))
    elif days < 30:
        messages.append(
            Warning(
                f"UNSUBSCRIBE_TOKEN_DAYS is {days}: unsubscribe links in emails stop working after {days} days.",
                hint="Mailbox providers send the one-click unsubscribe long after delivery; 90 is the default.",
                id="triggermail.W002",
            )
        )
    return messages


# Tagged "database", as Django asks of checks that connect: `manage.py check --database replica`.
@register(Tags.database)
def replica_is_a_standby(app_configs: Any, databases: Sequence[str] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """DATABASE_REPLICA_URL names a PostgreSQL standby (README, Read replica)."""
    if not databases or REPLICA not in databases or not replica_configured():
        return []
    try:
        in_recovery, _ = replica_status()
    except (OperationalError, InterfaceError) as exc:
        return [
            Warning(
                f"DATABASE_REPLICA_URL does not answer: {exc}".strip(),
                hint="The Dashboard reads from the primary until it does (and logs each failure).",
                id="triggermail.W020",
            )
        ]
    if not in_recovery:
        return [
            Warning(
                "DATABASE_REPLICA_URL is not a standby: pg_is_in_recovery() is false there.",
                hint="Point it at a streaming replica of DATABASE_URL's server; a second primary's figures "
                "are not this deployment's, and the Dashboard would show them.",
                id="triggermail.W021",
            )
        ]
    return []


@register()
def event_wakeup(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Behind PgBouncer (DATABASE_POOLING=transaction): how the dispatcher learns of new events."""
    if settings.DATABASE_POOLING != "transaction":
        return []
    if "direct" in settings.DATABASES:
        return [
            Info(
                "DATABASE_POOLING=transaction: the wake-ups (new events; with the ORM broker, queued tasks) LISTEN "
                "through DATABASE_DIRECT_URL.",
                hint="Everything else goes through the pooler; only each dispatcher holds a session of its own.",
                id="triggermail.I014",
            )
        ]
    return [
        Warning(
            f"DATABASE_POOLING=transaction without DATABASE_DIRECT_URL: new events are found by polling "
            f"every DISPATCH_INTERVAL ({settings.DISPATCH_INTERVAL}s) and, with the ORM broker, queued tasks every "
            f"Q_POLL ({settings.Q_CLUSTER['poll']}s), not woken by NOTIFY.",
            hint="LISTEN needs a session of its own, which transaction pooling does not give. Set "
            "DATABASE_DIRECT_URL to the same database without PgBouncer (postgres://user@db-host:5432/name) "
            "for the wake-up, or accept polling's latency and load.",
            id="triggermail.W014",
        )
    ]
