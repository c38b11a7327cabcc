"""The one table of a send's allowed state transitions, and the register of the functions that make them.

Every function of campaigns.sending.lifecycle declares the states it moves a send from and to with
@transition; the declaration is checked against TRANSITIONS when the module is imported, and each
function's conditional update takes its `state__in` filter from its own declaration. So the table,
the code and the README's table (rendered by transitions_markdown, checked by a test) cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from campaigns.models import Send

State = Send.State
F = TypeVar("F", bound=Callable[..., Any])

# From each state (None: the send does not exist yet), the states a send may move to.
TRANSITIONS: dict[State | None, frozenset[State]] = {
    None: frozenset({State.SCHEDULED}),
    # `scheduled` to itself: the send-time check moves a send to a later time (a window, a cap).
    State.SCHEDULED: frozenset({State.SENDING, State.SCHEDULED, State.CANCELLED, State.SUPPRESSED, State.FAILED}),
    State.SENDING: frozenset({State.SENT, State.UNKNOWN, State.SCHEDULED, State.FAILED}),
    # `unknown` to itself: an ambiguous answer arriving after the stale sweep keeps its error.
    State.UNKNOWN: frozenset({State.SENT, State.UNKNOWN, State.FAILED, State.ABANDONED, State.NOT_ACCEPTED}),
    State.ABANDONED: frozenset({State.SENT}),
    State.NOT_ACCEPTED: frozenset({State.SENT}),
    State.SENT: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.SUPPRESSED: frozenset(),
}


@dataclass(frozen=True)
class Move:
    """What one lifecycle function does: the states it moves a send from and to, and when."""

    function: str
    sources: tuple[State | None, ...]
    targets: tuple[State, ...]
    when: str

    def edges(self) -> set[tuple[State | None, State]]:
        return {(source, target) for source in self.sources for target in self.targets}


# Function name → its move, in the order the functions are defined.
MOVES: dict[str, Move] = {}


def transition(*sources: State | None, to: tuple[State, ...]) -> Callable[[F], F]:
    """Register a lifecycle function's move; raise at import if the table does not allow it."""

    def register(function: F) -> F:
        when = (function.__doc__ or "").strip().split("\n\n")[0]
        move = Move(function.__name__, sources, to, " ".join(when.split()))
        refused = sorted(f"{s} → {t}" for s, t in move.edges() if t not in TRANSITIONS[s])
        if refused:
            raise AssertionError(f"{function.__name__} makes transitions TRANSITIONS does not allow: {refused}")
        MOVES[function.__name__] = move
        return function

    return register


def sources_of(function: Callable[..., Any]) -> list[State]:
    """The states a lifecycle function may move a send from: its conditional update's `state__in`."""
    return [s for s in MOVES[function.__name__].sources if s is not None]


def transitions_check() -> None:
    """Every transition the table allows is made by some function (and, by @transition, no other)."""
    made = set().union(*(move.edges() for move in MOVES.values()))
    allowed = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    if made != allowed:
        raise AssertionError(f"TRANSITIONS and the lifecycle functions disagree: {sorted(map(str, made ^ allowed))}")


def transitions_markdown() -> str:
    """The README's table of transitions, one row per lifecycle function."""
    rows = ["| From | To | Function | When |", "| --- | --- | --- | --- |"]
    for move in MOVES.values():
        sources = ", ".join("(new)" if s is None else f"`{s}`" for s in move.sources)
        targets = ", ".join(f"`{t}`" for t in move.targets)
        rows.append(f"| {sources} | {targets} | `{move.function}` | {move.when} |")
    return "\n".join(rows) + "\n"
