"""schemathesis hooks for tests/test_api_contract.py (loaded through SCHEMATHESIS_HOOKS).

The OpenAPI document states every limit a field has on its own. One rule spans two fields and no
JSON Schema can state it: with `sentAt`, a message's time is corrected for the device's clock skew,
`received - (sentAt - timestamp)`, and refused if that lands before 1970 (the document says so in
words). Random dates far apart break it about half the time, so generated requests are kept within it;
everything else schemathesis generates is sent as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis

from events.timestamps import EARLIEST, timestamp_parse


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    """False for a body whose clock-skew correction would move one of its messages before 1970."""
    if not isinstance(body, dict):
        return True
    batch = body.get("batch")
    messages = batch if isinstance(batch, list) else [body]
    batch_sent_at = _time(body, "sentAt")
    longest_gap = datetime.now(UTC) - EARLIEST
    for message in messages:
        if not isinstance(message, dict):
            continue
        key = "timestamp" if message.get("timestamp") is not None else "originalTimestamp"
        acted_at, sent_at = _time(message, key), _time(message, "sentAt") or batch_sent_at
        if acted_at is not None and sent_at is not None and sent_at - acted_at > longest_gap:
            return False
    return True


def _time(raw: dict[str, Any], key: str) -> datetime | None:
    # The parser's own reading: a value it would refuse is left for the server to refuse.
    return timestamp_parse(raw, key, [])
