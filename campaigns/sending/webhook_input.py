"""The shape a signed SendGrid Event Webhook body must have before Anymail parses it.

Anymail's SendGrid parser trusts the body: an object instead of an array, a string or 1e20
`timestamp`, a number where it expects text all raise inside it, and the view answers 500, which
SendGrid takes as "try again later" and posts the same bad body again for days. A body is checked
here whole, before any of its events is parsed or recorded, so a bad body is refused (400, naming
the event and the field) and nothing from it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from triggermail.text import json_type, unstorable_text

# A sane range for SendGrid's Unix-second timestamps: 2000-01-01 to 2100-01-01 (UTC). Anything
# outside is not a time SendGrid reports, and 1e20 does not even fit a datetime.
TIMESTAMP_MIN = 946_684_800
TIMESTAMP_MAX = 4_102_444_800

# Fields SendGrid always sends, and their type.
REQUIRED_TEXT = ("event", "email")
# Fields Anymail reads as text when they are there (ids, MTA answers, drop reasons, click details).
OPTIONAL_TEXT = (
    "sg_event_id",
    "sg_message_id",
    "smtp-id",
    "anymail_id",
    "type",
    "reason",
    "response",
    "url",
    "useragent",
)


class WebhookBodyError(Exception):
    """Why a webhook body cannot be used; `index` is the event's position in the array, if any."""

    def __init__(self, field: str, reason: str, index: int | None = None) -> None:
        self.field, self.reason, self.index = field, reason, index
        super().__init__(field, reason, index)

    def __str__(self) -> str:
        where = f"event {self.index}, field {self.field!r}" if self.index is not None else self.field
        return f"{where}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {"error": str(self), "index": self.index, "field": self.field, "reason": self.reason}


def webhook_events_parse(body: bytes) -> list[dict[str, Any]]:
    """The events of a webhook body, checked; raises WebhookBodyError for the first problem."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookBodyError("body", "is not UTF-8 text") from None
    except ValueError as exc:
        raise WebhookBodyError("body", f"is not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise WebhookBodyError("body", f"must be a JSON array of events, not {json_type(data)}")
    for index, event in enumerate(data):
        if not isinstance(event, dict):
            raise WebhookBodyError("event", f"must be a JSON object, not {json_type(event)}", index)
        _event_check(event, index)
    return data


def _event_check(event: dict[str, Any], index: int) -> None:
    for name in REQUIRED_TEXT:
        if name not in event:
            raise WebhookBodyError(name, "is missing", index)
    for name in (*REQUIRED_TEXT, *OPTIONAL_TEXT):
        if name in event and not isinstance(event[name], str):
            raise WebhookBodyError(name, f"must be a string, not {json_type(event[name])}", index)
    _timestamp_check(event, index)
    category = event.get("category", [])
    if not isinstance(category, str | list) or not all(isinstance(c, str) for c in _as_list(category)):
        raise WebhookBodyError("category", "must be a string or an array of strings", index)
    # The whole event is stored as JSON: PostgreSQL refuses NUL anywhere in it, keys included.
    for path, text in _texts(event):
        problem = unstorable_text(text)
        if problem is not None:
            raise WebhookBodyError(path, problem, index)


def _timestamp_check(event: dict[str, Any], index: int) -> None:
    if "timestamp" not in event:
        raise WebhookBodyError("timestamp", "is missing", index)
    value = event["timestamp"]
    # bool is an int in Python, but `true` is not a time.
    if not isinstance(value, int) or isinstance(value, bool):
        raise WebhookBodyError("timestamp", f"must be an integer (Unix seconds), not {json_type(value)}", index)
    if not TIMESTAMP_MIN <= value <= TIMESTAMP_MAX:
        raise WebhookBodyError(
            "timestamp", f"{value} is out of range (Unix seconds from {TIMESTAMP_MIN} to {TIMESTAMP_MAX})", index
        )


def _as_list(value: str | list[Any]) -> list[Any]:
    return [value] if isinstance(value, str) else value


def _texts(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, keys included, with where it is (`field.sub[2]`)."""
    if isinstance(value, str):
        yield path or "event", value
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key)
            yield from _texts(item, where)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _texts(item, f"{path}[{position}]")
