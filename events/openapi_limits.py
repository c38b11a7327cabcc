"""The parts of the OpenAPI document that describe rate limits and browser keys' warnings
(events/ratelimit.py, events/key_kinds.py), kept apart so events/openapi.py stays readable."""

from __future__ import annotations

from typing import Any

_REF = "#/components/schemas/"

LIMIT_SCHEMAS: dict[str, Any] = {
    "Warnings": {
        "type": "array",
        "description": "Messages stored but not applied in full: a browser write key's traits (email "
        "included) never change a contact. Only present when there are some.",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["index", "messageId", "field", "reason"],
            "additionalProperties": False,
            "properties": {
                "index": {"type": "integer", "minimum": 0, "description": "Position in the batch (0 alone)."},
                "messageId": {"type": "string"},
                "field": {"type": "string", "enum": ["traits", "context.traits"]},
                "reason": {"type": "string"},
            },
        },
    },
}

WARNINGS_PROPERTY: dict[str, Any] = {"warnings": {"$ref": _REF + "Warnings"}}

TOO_MANY_REQUESTS: dict[str, Any] = {
    "description": "This write key is over its rate limit (requests per second, with a burst); the reason "
    "names the limit. Nothing was stored: send the same request again after Retry-After seconds.",
    "headers": {
        "Retry-After": {
            "description": "Seconds until one request of this key fits again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "content": {"application/json": {"schema": {"$ref": _REF + "RequestRefused"}}},
}
