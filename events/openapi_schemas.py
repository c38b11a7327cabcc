"""The JSON Schemas of the ingest API's messages, built from the limits the parser enforces.

Every number and rule here comes from the module that enforces it (events.parsing, events.body,
events.timestamps, events.contact_fields), so the published document cannot drift from the server:
a message valid under these schemas is one the server stores, and one the server refuses is invalid
here, except where JSON Schema cannot say it (the message's size in bytes, its nesting depth, a
timestamp pushed before 1970 by the sentAt correction, an unpaired surrogate), which the
descriptions state. tests/test_openapi_limits.py holds the two to each other, limit by limit.
"""

from __future__ import annotations

from typing import Any

from events.body import LARGEST_FLOAT, MAX_DEPTH, MAX_INTEGER_DIGITS
from events.contact_fields import MAX_EMAIL_LENGTH, MAX_LOCALE_LENGTH, time_zone_names
from events.parsing import MAX_MESSAGE_BYTES, MAX_NAME_LENGTH, SUPPORTED_TYPES
from events.timestamps import EARLIEST, LATEST

REF = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


# PostgreSQL cannot store NUL in text or jsonb (triggermail.text.unstorable_text), so no string of a
# message may hold one, nor may a key. Unpaired surrogates are refused too; a regular expression
# cannot name them portably, so the descriptions do.
NO_NUL = "^[^\\x00]*$"
# The years EARLIEST.year to LATEST.year - 1 as written (1970-2999); tests/test_openapi_limits.py checks
# the pattern against those constants.
YEAR_RANGE = "^(19[7-9][0-9]|2[0-9]{3})-"

_ABSENT = {"enum": ["", None]}
_ID: dict[str, Any] = {
    "type": ["string", "number", "null"],
    "maxLength": MAX_NAME_LENGTH,
    "pattern": NO_NUL,
    "description": f"A string of at most {MAX_NAME_LENGTH} characters, or a number (stored as its string).",
}
_REQUIRED_ID: dict[str, Any] = {**_ID, "type": ["string", "number"], "minLength": 1}
_TIME: dict[str, Any] = {
    "type": ["string", "null"],
    "format": "date-time",
    "pattern": YEAR_RANGE,
    "description": f"ISO 8601 with a time zone offset (Z or +01:00), from {EARLIEST.year} to before {LATEST.year}. "
    "null is the same as leaving it out.",
}
_STORABLE_NOTE = (
    f"No string or key may hold a NUL character (\\u0000) or an unpaired UTF-16 surrogate, and nothing may be "
    f"nested more than {MAX_DEPTH} levels deep: the database could not store it."
)


def _object_of_storable(description: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": ref("StorableValue"),
    }
    if properties:
        schema["properties"] = properties
    return schema


def _nullable(schema_name: str, description: str) -> dict[str, Any]:
    return {"anyOf": [ref(schema_name), {"type": "null"}], "description": description}


_ZONE = {
    "enum": [*sorted(time_zone_names()), "", None],
    "description": "An IANA time zone name, e.g. Europe/Paris (the names Python's zoneinfo knows).",
}
_LOCALE = {
    "type": ["string", "null"],
    "maxLength": MAX_LOCALE_LENGTH,
    "pattern": NO_NUL,
    "description": "A language tag, e.g. en-US.",
}

_COMMON_FIELDS: dict[str, Any] = {
    "userId": {**_ID, "description": "Your id for the person. " + _ID["description"]},
    "anonymousId": {**_ID, "description": "Id of a person not yet known; used when userId is absent."},
    "messageId": {
        **_ID,
        "minLength": 1,
        "description": "Unique id of the message: a message posted again with the same id is stored and "
        "processed once. Without it, a message with a timestamp is recognised by its content.",
    },
    "timestamp": {
        **_TIME,
        "description": "When the person acted. Corrected for the device's clock skew when sentAt is given "
        f"(and refused if that puts it before {EARLIEST.year}); never later than when the message was received. "
        "Defaults to the time received. " + _TIME["description"],
    },
    "originalTimestamp": {**_TIME, "description": "Read as timestamp when timestamp is absent (client SDKs)."},
    "context": _nullable("Context", "Where the message came from."),
    "integrations": {**ref("StorableValue"), "description": "Accepted and ignored."},
}
# Beside the message posted alone, or beside a batch.
REQUEST_FIELDS: dict[str, Any] = {
    "writeKey": {
        **ref("StorableValue"),
        "description": "The write key, when not sent with HTTP Basic (read only when it is a string).",
    },
    "sentAt": {**_TIME, "description": "When the device sent the request, by its own clock (skew correction)."},
}
_PROPERTIES = _nullable("StorableObject", "Free-form properties of the event, used by rule conditions.")


def _has(key: str) -> dict[str, Any]:
    """The message carries `key` with a value other than null or the empty string."""
    return {"required": [key], "properties": {key: {"not": _ABSENT}}}


def _message(kind: str, description: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{description} {_STORABLE_NOTE} At most {MAX_MESSAGE_BYTES // 1024} KB as compact JSON.",
        "properties": {"type": {"const": kind}, **_COMMON_FIELDS, **fields},
        "required": ["type", *required],
        "anyOf": [_has("userId"), _has("anonymousId")],
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": ref("StorableValue"),
    }


MESSAGES: dict[str, dict[str, Any]] = {
    "TrackMessage": _message(
        "track",
        "An action the person took. Rules listen to track events by name.",
        {
            "event": {
                "type": ["string", "number"],
                "maxLength": MAX_NAME_LENGTH,
                # Something other than white space, and no NUL anywhere.
                "pattern": "^[^\\x00]*[^\\x00\\s][^\\x00]*$",
                "description": f"The event's name, 1 to {MAX_NAME_LENGTH} characters, not only white space "
                "(which is trimmed).",
            },
            "properties": _PROPERTIES,
        },
        ["event"],
    ),
    "IdentifyMessage": _message(
        "identify",
        "Who the person is: traits are merged into their contact.",
        {"traits": _nullable("Traits", "Traits of the person.")},
        [],
    ),
    "PageMessage": _message("page", "Stored, not matched.", {"name": _ID, "properties": _PROPERTIES}, []),
    "ScreenMessage": _message("screen", "Stored, not matched.", {"name": _ID, "properties": _PROPERTIES}, []),
    "GroupMessage": _message(
        "group",
        "Stored, not matched; groupId is kept in the event's properties.",
        {"groupId": _REQUIRED_ID, "properties": _PROPERTIES},
        ["groupId"],
    ),
    "AliasMessage": _message(
        "alias",
        "Stored, not matched; previousId is kept in the event's properties.",
        {"previousId": _REQUIRED_ID, "properties": _PROPERTIES},
        ["previousId"],
    ),
}
KINDS = {kind: f"{kind.capitalize()}Message" for kind in SUPPORTED_TYPES}


def single(kind: str) -> dict[str, Any]:
    """A message posted alone: `type` may be left out, and writeKey and sentAt sit beside it."""
    schema = MESSAGES[KINDS[kind]]
    return {
        **schema,
        "properties": {**schema["properties"], **REQUEST_FIELDS},
        "required": [r for r in schema["required"] if r != "type"],
    }


_STORABLE_STRING = {"type": "string", "pattern": NO_NUL}

MESSAGE_SCHEMAS: dict[str, Any] = {
    **MESSAGES,
    "StorableValue": {
        "description": "Any JSON value the database can store. " + _STORABLE_NOTE,
        "anyOf": [
            _STORABLE_STRING,
            {"type": "integer", "description": f"Stored exactly, up to {MAX_INTEGER_DIGITS:,} digits."},
            {"type": "number", "minimum": -LARGEST_FLOAT, "maximum": LARGEST_FLOAT},
            {"type": ["boolean", "null"]},
            {"type": "array", "items": ref("StorableValue")},
            _object_of_storable("An object of storable values."),
        ],
    },
    "StorableObject": _object_of_storable("An object of storable values."),
    "Traits": _object_of_storable(
        "Traits of the person, merged into their contact. Known keys are validated.",
        {
            "email": {
                "anyOf": [{"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH}, _ABSENT],
                "description": "The address their email goes to.",
            },
            "timezone": _ZONE,
            "locale": _LOCALE,
        },
    ),
    "Context": _object_of_storable(
        "Where the message came from. On calls other than identify, context.traits are merged into the "
        "sender's contact as identify traits are. Both time zones (and both locales) are validated; "
        "the trait's wins.",
        {"traits": _nullable("Traits", "Traits of the person."), "timezone": _ZONE, "locale": _LOCALE},
    ),
    "Message": {
        "oneOf": [ref(name) for name in KINDS.values()],
        "discriminator": {"propertyName": "type", "mapping": {k: REF + v for k, v in KINDS.items()}},
    },
}
