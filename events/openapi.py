"""The published OpenAPI 3.1 description of the ingest API (served at /v1/openapi.json).

Written by hand next to the code it describes; tests validate it with openapi-spec-validator, check
real answers against its response schemas and post its examples to the API.
"""

from __future__ import annotations

from typing import Any

from events.body import MAX_REQUEST_BYTES
from events.openapi_limits import LIMIT_SCHEMAS, TOO_MANY_REQUESTS, WARNINGS_PROPERTY
from events.parsing import MAX_MESSAGE_BYTES, MAX_NAME_LENGTH, SUPPORTED_TYPES

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


_ID = {"type": ["string", "number"], "maxLength": MAX_NAME_LENGTH}
_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 with a time zone offset (Z or +01:00); between 1970 and 3000.",
}

_COMMON_FIELDS: dict[str, Any] = {
    "userId": {**_ID, "description": "Your id for the person. A number is stored as its string."},
    "anonymousId": {**_ID, "description": "Id of a person not yet known; used when userId is absent."},
    "messageId": {
        "type": ["string", "number"],
        "minLength": 1,
        "maxLength": MAX_NAME_LENGTH,
        "description": "Unique id of the message: a message posted again with the same id is stored and "
        "processed once. Without it, a message with a timestamp is recognised by its content.",
    },
    "timestamp": {
        **_TIME,
        "description": "When the person acted. Corrected for the device's clock skew when sentAt is given; "
        "never later than when the message was received. Defaults to the time received.",
    },
    "context": _ref("Context"),
    "integrations": {"type": "object", "description": "Accepted and ignored."},
}

_SINGLE_FIELDS: dict[str, Any] = {
    "writeKey": {"type": "string", "description": "The write key, when not sent with HTTP Basic."},
    "sentAt": {**_TIME, "description": "When the device sent the request, by its own clock (skew correction)."},
}


def _message(kind: str, description: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {"type": {"const": kind}, **_COMMON_FIELDS, **fields},
        "required": ["type", *required],
        "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
    }


_PROPERTIES = {"type": "object", "description": "Free-form properties of the event, used by rule conditions."}
_MESSAGES: dict[str, dict[str, Any]] = {
    "TrackMessage": _message(
        "track",
        "An action the person took. Rules listen to track events by name.",
        {"event": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}, "properties": _PROPERTIES},
        ["event"],
    ),
    "IdentifyMessage": _message(
        "identify", "Who the person is: traits are merged into their contact.", {"traits": _ref("Traits")}, []
    ),
    "PageMessage": _message(
        "page", "Stored, not matched.", {"name": {"type": "string"}, "properties": _PROPERTIES}, []
    ),
    "ScreenMessage": _message(
        "screen", "Stored, not matched.", {"name": {"type": "string"}, "properties": _PROPERTIES}, []
    ),
    "GroupMessage": _message(
        "group",
        "Stored, not matched; groupId is kept in the event's properties.",
        {"groupId": _ID, "traits": {"type": "object", "description": "Traits of the group."}},
        ["groupId"],
    ),
    "AliasMessage": _message(
        "alias",
        "Stored, not matched; previousId is kept in the event's properties.",
        {"previousId": _ID},
        ["previousId"],
    ),
}
_KINDS = {kind: f"{kind.capitalize()}Message" for kind in SUPPORTED_TYPES}


def _single(kind: str) -> dict[str, Any]:
    """A message posted alone: `type` may be left out, and writeKey and sentAt sit beside it."""
    schema = _MESSAGES[_KINDS[kind]]
    return {
        **schema,
        "properties": {**schema["properties"], **_SINGLE_FIELDS},
        "required": [r for r in schema["required"] if r != "type"],
    }


_SCHEMAS: dict[str, Any] = {
    **_MESSAGES,
    "Traits": {
        "type": "object",
        "description": "Traits of the person, merged into their contact. Known keys are validated.",
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "timezone": {"type": "string", "description": "IANA time zone, e.g. Europe/Paris."},
            "locale": {"type": "string", "maxLength": 35, "description": "e.g. en-US"},
        },
    },
    "Context": {
        "type": "object",
        "description": "Where the message came from. On calls other than identify, context.traits are "
        "merged into the sender's contact as identify traits are.",
        "properties": {
            "traits": _ref("Traits"),
            "timezone": {"type": "string", "description": "IANA time zone; traits.timezone wins."},
            "locale": {"type": "string", "maxLength": 35},
        },
    },
    "Message": {
        "oneOf": [_ref(name) for name in _KINDS.values()],
        "discriminator": {"propertyName": "type", "mapping": {k: _REF + v for k, v in _KINDS.items()}},
    },
    "Batch": {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "minItems": 1, "items": _ref("Message")},
            "context": {**_ref("Context"), "description": "Applied to every message; a message's own keys win."},
            **_SINGLE_FIELDS,
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


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_RESPONSES: dict[str, Any] = {
    "200": _json(_ref("Success"), "Every message is committed (or was already stored under its messageId)."),
    "400": _json(
        {"oneOf": [_ref("RequestRefused"), _ref("MessagesRejected")]},
        "The body is not a valid request (nothing stored), or some messages are invalid (the others are stored).",
    ),
    "401": _json(_ref("RequestRefused"), "No write key, an unknown one, or a revoked one. Nothing stored."),
    "405": _json(_ref("RequestRefused"), "Only POST is allowed."),
    "413": _json(
        {"oneOf": [_ref("RequestRefused"), _ref("MessagesRejected")]},
        f"The request is over {MAX_REQUEST_BYTES // 1024} KB, also once gunzipped (nothing stored), or a message "
        f"is over {MAX_MESSAGE_BYTES // 1024} KB (the others are stored).",
    ),
    "415": _json(_ref("RequestRefused"), "The body or its Content-Type is not JSON, or the encoding is not gzip."),
    "429": TOO_MANY_REQUESTS,
}


def _operation(name: str, summary: str, schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": name,
            "summary": summary,
            "requestBody": {
                "required": True,
                "description": (
                    "JSON, optionally with Content-Encoding: gzip. text/plain and application/x-www-form-urlencoded "
                    "bodies are read as JSON (RudderStack's Node SDK labels its gzip JSON so)."
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
            f"{MAX_REQUEST_BYTES // 1024} KB per request. Retry on 5xx, and on 429 after Retry-After, "
            "with the same messageIds (deduplicated per write key).",
        },
        "servers": [{"url": base_url}],
        "security": [{"writeKey": []}],
        "paths": {
            "/v1/track": _operation("track", "Record one action", _single("track"), _TRACK_EXAMPLE),
            "/v1/identify": _operation("identify", "Describe one person", _single("identify"), _IDENTIFY_EXAMPLE),
            "/v1/batch": _operation("batch", "Send several messages of any type", _ref("Batch"), _BATCH_EXAMPLE),
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
