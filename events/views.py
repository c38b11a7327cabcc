"""The Segment-compatible ingest API. Views only translate HTTP; the work is in events.ingest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from events.auth import Unauthorized, write_key_authenticate
from events.ingest import events_ingest
from events.openapi import openapi_document
from events.parsing import (
    Message,
    MessageError,
    RequestRefused,
    batch_parse,
    body_read,
    single_parse,
    write_key_from_body,
)

Parser = Callable[[Any], tuple[list[Message], list[MessageError]]]


def _error(status: int, field: str, reason: str) -> JsonResponse:
    return JsonResponse({"success": False, "errors": [{"field": field, "reason": reason}]}, status=status)


def _ingest(request: HttpRequest, parse: Callable[..., tuple[list[Message], list[MessageError]]]) -> JsonResponse:
    received_at = timezone.now()
    try:
        document = body_read(request)
    except RequestRefused as refused:
        # Authenticate first so that an anonymous caller learns nothing but "401".
        try:
            write_key_authenticate(request)
        except Unauthorized as exc:
            return _error(401, "writeKey", str(exc))
        return _error(refused.status, refused.field, refused.reason)
    try:
        source = write_key_authenticate(request, write_key_from_body(document))
        messages, errors = parse(document, received_at=received_at)
    except Unauthorized as exc:
        return _error(401, "writeKey", str(exc))
    except RequestRefused as refused:
        return _error(refused.status, refused.field, refused.reason)
    result = events_ingest(source=source, messages=messages, received_at=received_at)
    if not errors:
        return JsonResponse({"success": True})
    # Valid messages were committed above; the answer names every bad one. A message over the
    # size limit makes the status 413, any other problem 400.
    status = 413 if any(e.too_large for e in errors) else 400
    body = {
        "success": False,
        "accepted": result.accepted + result.duplicates,
        "rejected": len({e.index for e in errors}),
        "errors": [e.as_json() for e in errors],
    }
    return JsonResponse(body, status=status)


@csrf_exempt
@require_POST
def batch(request: HttpRequest) -> JsonResponse:
    return _ingest(request, batch_parse)


@csrf_exempt
@require_POST
def track(request: HttpRequest) -> JsonResponse:
    return _ingest(request, lambda doc, received_at: single_parse(doc, kind="track", received_at=received_at))


@csrf_exempt
@require_POST
def identify(request: HttpRequest) -> JsonResponse:
    return _ingest(request, lambda doc, received_at: single_parse(doc, kind="identify", received_at=received_at))


@require_GET
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document(base_url=request.build_absolute_uri("/").rstrip("/")))
