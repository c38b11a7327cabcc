"""The one place that talks to the email provider, and classifies what its answer proves.

SendGrid has no idempotency key, so after a failure the only question is: could the message have
been accepted? "No" (nothing reached it, or it refused) allows a retry; "maybe" never does.
"""

from __future__ import annotations

import email.utils
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from anymail.backends.base_requests import AnymailRequestsBackend
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from anymail.message import AnymailMessage
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.signals import setting_changed
from urllib3.exceptions import NameResolutionError, NewConnectionError

from triggermail.metrics import provider_call_observe


class ProviderOutcome(StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"  # proven not sent; may be tried again
    REJECTED = "rejected"  # proven not sent; trying again would not help
    AMBIGUOUS = "ambiguous"  # may have been sent; never retried automatically


@dataclass(frozen=True)
class ProviderResult:
    outcome: ProviderOutcome
    message_id: str = ""
    error: str = ""
    retry_after: float | None = None


# The outcome classes the metrics count provider calls by: what each answer proves.
OUTCOME_CLASSES = {
    ProviderOutcome.ACCEPTED: "sent",
    ProviderOutcome.RETRY: "not_sent",
    ProviderOutcome.REJECTED: "refused",
    ProviderOutcome.AMBIGUOUS: "ambiguous",
}


def provider_send(message: AnymailMessage) -> ProviderResult:
    started = time.perf_counter()
    result = _provider_send(message)
    provider_call_observe(OUTCOME_CLASSES[result.outcome], time.perf_counter() - started)
    return result


def _provider_send(message: AnymailMessage) -> ProviderResult:
    try:
        message.connection = provider_connection()
        sent = message.send()
    except Exception as exc:  # every failure is classified; none may escape unrecorded
        # Anymail's post_send signal runs after the provider answered; an error raised by a
        # receiver there does not undo an accepted message, and must not make it look unsent.
        response = _esp_response(message)
        if response is not None and 200 <= response.status_code < 300:
            return ProviderResult(ProviderOutcome.ACCEPTED, message_id=_message_id(response), error=_error_text(exc))
        return error_classify(exc)
    if not sent:
        # A pre_send receiver cancelled it, or it had no recipients: the provider was not called.
        return ProviderResult(
            ProviderOutcome.REJECTED, error="the email backend sent nothing (cancelled before sending)"
        )
    response = _esp_response(message)
    return ProviderResult(ProviderOutcome.ACCEPTED, message_id=_message_id(response) if response is not None else "")


_local = threading.local()
_generation = 0


def provider_connection() -> BaseEmailBackend:
    """This thread's open connection to the provider, reused from message to message.

    An HTTP API backend keeps one requests session (keep-alive) per thread instead of a new TCP
    (and, with SendGrid, TLS) connection per message. Other backends (the file capture) get a fresh
    connection per message, as Django's send_mail would give them.
    """
    cached = getattr(_local, "connection", None)
    if cached is not None and getattr(_local, "generation", -1) == _generation:
        return cached
    connection = get_connection()
    if not isinstance(connection, AnymailRequestsBackend):
        return connection
    if cached is not None:
        cached.close()
    connection.open()
    _environment_settle(connection)
    _local.connection, _local.generation = connection, _generation
    return connection


def _environment_settle(connection: AnymailRequestsBackend) -> None:
    # requests reads the proxy and CA-bundle environment variables again for every request (about a
    # fifth of the CPU a message costs here); read them once for this connection's provider URL.
    session = connection.session
    assert session is not None  # opened above
    found = session.merge_environment_settings(connection.api_url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.trust_env = False


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # Tests switch the backend and its URL per test: every thread must reconnect with the new ones.
    global _generation
    if setting in ("EMAIL_BACKEND", "ANYMAIL"):
        _generation += 1


setting_changed.connect(_settings_changed)


def _esp_response(message: AnymailMessage) -> requests.Response | None:
    status = getattr(message, "anymail_status", None)
    return getattr(status, "esp_response", None)


def _message_id(response: requests.Response) -> str:
    return str(response.headers.get("X-Message-Id", ""))


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _never_connected(exc: BaseException) -> bool:
    """True when the request provably never reached the provider (refused, unresolvable host)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | NameResolutionError | ConnectionRefusedError):
            return True
        stack += [getattr(current, "reason", None), current.__cause__, current.__context__]
        stack += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
    return False


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    if header:
        if header.strip().isdigit():
            return float(header)
        try:
            parsed = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            # A garbled header must not turn a proven "not sent" into an unrecorded crash.
            return None
        return max(0.0, parsed.timestamp() - time.time())
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def error_classify(exc: BaseException) -> ProviderResult:
    text = _error_text(exc)
    if isinstance(exc, AnymailRequestsAPIError):
        status = exc.status_code
        if status is not None and 200 <= status < 300 and exc.response is not None:
            # The provider accepted it; only reading its answer failed.
            return ProviderResult(ProviderOutcome.ACCEPTED, message_id=_message_id(exc.response), error=text)
        if status is None:
            if _never_connected(exc):
                return ProviderResult(ProviderOutcome.RETRY, error=text)
            # Read timeouts and connections dropped after the request went out.
            return ProviderResult(ProviderOutcome.AMBIGUOUS, error=text)
        if status == 429:
            return ProviderResult(ProviderOutcome.RETRY, error=text, retry_after=_retry_after(exc.response))
        if status in (401, 403):
            # A wrong or revoked API key: nothing was sent, and an operator can fix it in time.
            return ProviderResult(ProviderOutcome.RETRY, error=text)
        if status >= 500:
            return ProviderResult(ProviderOutcome.AMBIGUOUS, error=text)
        return ProviderResult(ProviderOutcome.REJECTED, error=text)
    if isinstance(exc, AnymailError):
        # Raised while building the request (bad address, unsupported feature): nothing was sent.
        return ProviderResult(ProviderOutcome.REJECTED, error=text)
    return ProviderResult(ProviderOutcome.AMBIGUOUS, error=text)
