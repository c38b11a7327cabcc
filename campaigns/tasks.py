"""django-q2 entry points for delivery: thin, safe to run twice or concurrently."""

from __future__ import annotations

from campaigns.sending.delivery import sends_deliver as _sends_deliver


def sends_deliver(send_ids: list[int]) -> dict[str, int]:
    return _sends_deliver(send_ids)
