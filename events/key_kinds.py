"""What a browser key's messages may do: be stored and matched, never change a contact.

A browser key (analytics.js) is public: every visitor can read it from the page and post anything
with it. So its messages cannot say who a contact is. The line, exactly:

- Every call type is accepted and stored as sent (nothing an SDK sends is dropped, and a 400
  would make the SDK drop the whole batch, its track calls included). Track calls are matched
  against rules as any other, their `properties` included.
- No message of a browser key changes a Contact: its traits (an identify call's `traits`,
  `context.traits` on any call), and so `email`, and the time zone and locale it carries are not
  merged; a contact it names is not created. The stored event's `traits` are empty too (its
  `context` is kept as sent, for the record), so nothing downstream takes them for the person's.
  An email therefore only ever goes to an address a server key set, and every trait a rule or
  template reads comes from a server key.
- Each message whose traits were set aside is named in the answer's `warnings`
  (`{"index", "messageId", "field", "reason"}`), so a developer sees why an identify did nothing.
  The time zone and locale that browsers add to every call's context are set aside without a
  warning: the SDK sent them, not the developer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from events.models import WriteKey
from events.parsing import Message

BROWSER_TRAITS_REASON = (
    "a browser write key cannot change a contact: these traits (email included) were not applied; "
    "the message was stored. Send identify calls with a server key."
)


def messages_for_kind(key: WriteKey, messages: Sequence[Message]) -> tuple[list[Message], list[dict[str, Any]]]:
    """The messages as they may be stored for this key's kind, and a warning per changed message."""
    if key.kind != WriteKey.Kind.BROWSER:
        return list(messages), []
    kept: list[Message] = []
    warnings: list[dict[str, Any]] = []
    for message in messages:
        if message.contact_traits:
            warnings.append(_warning(message))
        kept.append(_without_contact_fields(message))
    return kept, warnings


def _without_contact_fields(message: Message) -> Message:
    # A group call's own traits describe the group, not a person: they stay.
    traits = message.traits if message.type == "group" else {}
    return dataclasses.replace(message, contact_traits={}, traits=traits, timezone="", locale="")


def _warning(message: Message) -> dict[str, Any]:
    field = "traits" if message.type == "identify" else "context.traits"
    return {"index": message.index, "messageId": message.message_id, "field": field, "reason": BROWSER_TRAITS_REASON}
