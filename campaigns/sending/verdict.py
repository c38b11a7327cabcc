"""What a send-time check says about a send that must not go out now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    # With state `scheduled`: not now, but then (outside the send window, over a frequency cap).
    due_at: datetime | None = None
