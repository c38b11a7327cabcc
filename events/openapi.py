"""The published OpenAPI 3.1 description of the ingest API (served at /v1/openapi.json).

Written by hand next to the code it describes; tests validate it with openapi-spec-validator, check
real answers against its response schemas and post its examples to the API.
"""

from __future__ import annotations

from typing import Any

from events.body import MAX_REQUEST_BYTES
from events.openapi_limits import LIMIT_SCHEMAS, TOO_MANY_REQUESTS, WARNINGS_PROPERTY
from events.openapi_schemas import MESSAGE_SCHEMAS, REQUEST_FIELDS, ref, single
from events.parsing import MAX_MESSAGE_BYTES

_SCHEMAS: dict[str, Any] = {
    **MESSAGE_SCHEMAS,
    "Batch": {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "minItems": 1, "items": ref("Message")},
            "context": {**ref("Context"), "description": "Applied to every message; a message's own keys win."},
            "writeKey": {"description": "The write key, if not sent with HTTP Basic (read if a string); not stored."},
            "sentAt": REQUEST_FIELDS["sentAt"],
        },
    },
    "Success": {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"const": True}, **WARNINGS_PROPERTY},
        "additionalProperties": False,
    },
    "RequestRefused": {
        "type": "object",
        "description": "The request as a whole was refused: nothing in it was stored.",
        "required": ["success", "errors"],
        "additionalProperties": False,
        "properties": {
            "success": {"const": False},
            "errors": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["field", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "field": {"type": "string", "description": "e.g. writeKey, body, batch, sentAt"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    },
    "MessagesRejected": {
        "type": "object",
        "description": "Some messages were bad. The others are stored (counted in accepted, including "
        "duplicates of messages already stored) and must not be sent again; fix and resend the rejected ones.",
        "required": ["success", "accepted", "rejected", "errors"],
        "additionalProperties": False,
        "properties": {
            "success": {"const": False},
            **WARNINGS_PROPERTY,
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 1},
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["index", "field", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "index": {"type": "integer", "minimum": 0, "description": "Position in the batch (0 alone)."},
                        "messageId": {"type": "string"},
                        "field": {"type": "string", "description": "e.g. event, userId, context.traits.email"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    },
}


def _json(schema: dict[str, Any], description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = {name.replace("_", "-"): header for name, header in headers.items()}
    return answer


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


_REFUSED_OR_REJECTED = {"oneOf": [ref("RequestRefused"), ref("MessagesRejected")]}
_RESPONSES: dict[str, Any] = {
    "200": _json(ref("Success"), "Every message is committed (or was already stored under its messageId)."),
    "400": _json(
        _REFUSED_OR_REJECTED,
        "The body is not a valid request (nothing stored), or some messages are invalid (the others are stored).",
    ),
    "401": _json(
        ref("RequestRefused"),
        "No write key, an unknown one, or a revoked one. Nothing stored.",
        WWW_Authenticate=_header("Basic, with the realm.", {"type": "string", "pattern": "^Basic "}),
    ),
    "405": _json(
        ref("RequestRefused"),
        "Only POST is allowed.",
        Allow=_header("The methods allowed.", {"const": "POST"}),
    ),
    "411": _json(
        ref("RequestRefused"),
        "A chunked body (Transfer-Encoding: chunked, no Content-Length) reached the application through a server "
        "that cannot say where it ends; the server shipped (gunicorn) can, so this is only seen behind another one. "
        "Nothing stored: send a Content-Length.",
    ),
    "413": _json(
        _REFUSED_OR_REJECTED,
        f"The request is over {MAX_REQUEST_BYTES // 1024} KB, chunked or not, also once gunzipped (nothing stored), "
        f"or a message is over {MAX_MESSAGE_BYTES // 1024} KB (the others are stored).",
    ),
    "415": _json(ref("RequestRefused"), "The body or its Content-Type is not JSON, or the encoding is not gzip."),
    "429": TOO_MANY_REQUESTS,
    "503": _json(
        ref("RequestRefused"),
        "The database could not take the request (a connection lost in a database restart, say). Nothing stored: "
        "send it again after Retry-After.",
        Retry_After=_header("Seconds to wait before retrying.", {"type": "string", "pattern": "^[0-9]+$"}),
    ),
}


def _operation(name: str, summary: str, schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": name,
            "summary": summary,
            "requestBody": {
                "required": True,
                "description": (
                    "JSON, optionally with Content-Encoding: gzip, with a Content-Length or chunked "
                    "(Transfer-Encoding: chunked). text/plain (analytics.js), application/*+json and "
                    "application/x-www-form-urlencoded bodies are read as JSON too (RudderStack's Node SDK labels "
                    f"its gzip JSON so). At most {MAX_REQUEST_BYTES // 1024} KB, also once gunzipped."
                ),
                "content": {"application/json": {"schema": schema, "example": example}},
            },
            "responses": _RESPONSES,
        }
    }


_TRACK_EXAMPLE = {
    "userId": "u-42",
    "event": "cart_abandoned",
    "properties": {"cart_value": 59.9},
    "context": {"traits": {"email": "ann@example.com"}, "timezone": "Europe/Paris"},
    "timestamp": "2026-11-28T10:00:00Z",
    "messageId": "example-track-1",
}
_IDENTIFY_EXAMPLE = {
    "userId": "u-42",
    "traits": {"email": "ann@example.com", "first_name": "Ann", "timezone": "Europe/Paris", "locale": "fr-FR"},
    "messageId": "example-identify-1",
}
_BATCH_EXAMPLE = {
    "batch": [
        {**_IDENTIFY_EXAMPLE, "type": "identify", "messageId": "example-batch-1"},
        {**_TRACK_EXAMPLE, "type": "track", "messageId": "example-batch-2"},
    ],
    "sentAt": "2026-11-28T10:00:05Z",
}


def openapi_document(*, base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TriggerMail ingest API",
            "version": "1",
            "description": "Compatible with Segment's HTTP Tracking API: point a Segment SDK's host at this "
            "server. Authenticate with HTTP Basic, the write key as user name and an empty password, or put "
            f"`writeKey` in the body. Limits: {MAX_MESSAGE_BYTES // 1024} KB per message, "
            f"{MAX_REQUEST_BYTES // 1024} KB per request. Retry on 5xx with the same messageIds.",
        },
        "servers": [{"url": base_url}],
        "security": [{"writeKey": []}],
        "paths": {
            "/v1/track": _operation("track", "Record one action", single("track"), _TRACK_EXAMPLE),
            "/v1/identify": _operation("identify", "Describe one person", single("identify"), _IDENTIFY_EXAMPLE),
            "/v1/batch": _operation("batch", "Send several messages of any type", ref("Batch"), _BATCH_EXAMPLE),
            "/v1/import": _operation(
                "import",
                "The same as /v1/batch, by Segment's older name (analytics-android)",
                ref("Batch"),
                _BATCH_EXAMPLE,
            ),
        },
        "components": {
            "schemas": {**_SCHEMAS, **LIMIT_SCHEMAS},
            "securitySchemes": {
                "writeKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The write key as user name, empty password. Alternatively `writeKey` in the body.",
                }
            },
        },
    }
