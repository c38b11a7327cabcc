"""The Segment-compatible ingest API. Views only translate HTTP; the work is in events.ingest.

Every answer is JSON, and its shape is the one published in events.openapi:
200 `{"success": true}` once every message is committed (with `warnings` when a browser key's
traits were set aside, events.key_kinds); a refused request (401, 429 over the key's rate limit,
413, 415, or 400 for a body that is not a batch) stores nothing and names the problem; a request with some bad
messages stores the good ones and answers 400 (413 if one was too large) naming each bad one; a
request the database could not take (its connection lost) stores nothing and answers 503 with
Retry-After.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from functools import partial, wraps
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from events.auth import Unauthorized, basic_user, write_key_authenticate
from events.body import RequestRefused, body_read
from events.ingest import IngestResult, events_ingest
from events.key_kinds import messages_for_kind
from events.models import WriteKey, write_key_hash
from events.openapi import openapi_document
from events.parsing import SUPPORTED_TYPES, Message, MessageError, batch_parse, single_parse
from events.ratelimit import RateLimited, rate_limit_refused, rate_limit_take
from triggermail.metrics import events_ingested_count, ingest_rate_limited_count

Parser = Callable[..., tuple[list[Message], list[MessageError]]]


def _refusal(status: int, field: str, reason: str) -> JsonResponse:
    response = JsonResponse({"success": False, "errors": [{"field": field, "reason": reason}]}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="TriggerMail ingest"'
    return response


def _post_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    # Like require_POST, but the 405 is JSON, as every other answer of this API.
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            response = _refusal(405, "method", f"{request.method} is not allowed; POST the message")
            response["Allow"] = "POST"
            return response
        return view(request)

    return csrf_exempt(wrapper)


def _document_authenticated(request: HttpRequest) -> tuple[Any, WriteKey]:
    """The body and the key, counted against its rate limit (RateLimited when over it)."""
    raw_key = basic_user(request)
    if raw_key:
        # The SDKs' way: the key is in the header, so a request over the limit is refused
        # before its body is decompressed or parsed, and a flood costs as little as can be:
        # once refused, without a query until its Retry-After has passed.
        rate_limit_refused(write_key_hash(raw_key))
        source = write_key_authenticate(request)
        rate_limit_take(source)
        return body_read(request), source
    try:
        document = body_read(request)
    except RequestRefused:
        # Authenticate first so that an anonymous caller learns nothing but "401". Without a
        # readable body only the Basic header can carry the key, and there is none.
        write_key_authenticate(request)
        raise
    source = write_key_authenticate(request, document)
    rate_limit_take(source)
    return document, source


def _answer(result: IngestResult, errors: list[MessageError], warnings: list[dict[str, Any]]) -> JsonResponse:
    # Warnings only when there are some: SDKs read nothing but the status, people read the rest.
    extra = {"warnings": warnings} if warnings else {}
    if not errors:
        return JsonResponse({"success": True, **extra})
    # The valid messages are committed; the answer names every bad one. A message over the
    # size limit makes the status 413, any other problem 400.
    body = {
        "success": False,
        "accepted": result.accepted + result.duplicates,
        "rejected": len({e.index for e in errors}),
        "errors": [e.as_json() for e in errors],
        **extra,
    }
    return JsonResponse(body, status=413 if any(e.too_large for e in errors) else 400)


def _too_many(limited: RateLimited) -> JsonResponse:
    ingest_rate_limited_count(limited.key_id)
    response = _refusal(429, "writeKey", str(limited))
    response["Retry-After"] = str(limited.retry_after)
    # Django logs every 4xx as a warning; a flood would then flood the logs too, at a cost per
    # request higher than the refusal's. The metric counts them per key instead. (Django's own
    # marker: django.utils.log.log_response skips a response that says it was logged.)
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _ingest_count(result: IngestResult, errors: list[MessageError], document: Any, kind: str | None) -> None:
    events_ingested_count("stored", result.stored_by_type)
    events_ingested_count("duplicate", result.duplicates_by_type)
    if errors:
        # A message with several problems is one rejected message.
        rejected = {e.index for e in errors}
        events_ingested_count("rejected", Counter(_declared_type(document, index, kind) for index in rejected))


def _declared_type(document: Any, index: int, kind: str | None) -> str:
    # A rejected message's type is what it said it was, when that is a type at all.
    if kind is not None:
        return kind
    batch = document.get("batch") if isinstance(document, dict) else None
    message = batch[index] if isinstance(batch, list) and 0 <= index < len(batch) else None
    declared = message.get("type") if isinstance(message, dict) else None
    return declared if declared in SUPPORTED_TYPES else "invalid"


def _database_unavailable(exc: Exception) -> JsonResponse:
    # A lost connection (a database restart, when the health check is skipped), a restart in
    # progress, a statement timeout: nothing was stored (the ingest is one statement, or one
    # transaction), so the same request may simply come again. Django closes the broken connection
    # once this answer is sent, and the next request connects anew.
    response = _refusal(503, "database", f"the database could not be reached ({type(exc).__name__}); retry")
    response["Retry-After"] = "1"
    return response


def _ingest(request: HttpRequest, parse: Parser, kind: str | None = None) -> JsonResponse:
    if not settings.INGEST_DATABASE_HEALTH_CHECKS:
        # Skip Django's `SELECT 1` before this request's first query (settings: what it trades).
        connection.health_check_done = True  # type: ignore[attr-defined]  # Django has it, its stubs not
    try:
        return _ingest_stored(request, parse, kind)
    except (OperationalError, InterfaceError) as exc:
        return _database_unavailable(exc)


def _ingest_stored(request: HttpRequest, parse: Parser, kind: str | None) -> JsonResponse:
    received_at: datetime = timezone.now()
    try:
        document, source = _document_authenticated(request)
        messages, errors = parse(document, received_at=received_at)
    except Unauthorized as exc:
        return _refusal(401, "writeKey", str(exc))
    except RateLimited as limited:
        return _too_many(limited)
    except RequestRefused as refused:
        return _refusal(refused.status, refused.field, refused.reason)
    messages, warnings = messages_for_kind(source, messages)
    result = events_ingest(source=source, messages=messages, received_at=received_at)
    _ingest_count(result, errors, document, kind)
    return _answer(result, errors, warnings)


@_post_only
def batch(request: HttpRequest) -> JsonResponse:
    return _ingest(request, batch_parse)


@_post_only
def track(request: HttpRequest) -> JsonResponse:
    return _ingest(request, partial(single_parse, kind="track"), kind="track")


@_post_only
def identify(request: HttpRequest) -> JsonResponse:
    return _ingest(request, partial(single_parse, kind="identify"), kind="identify")


@require_GET
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document(base_url=request.build_absolute_uri("/").rstrip("/")))
