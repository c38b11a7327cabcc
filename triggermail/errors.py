"""Telling a poison input from a passing outage, and putting an error into words for a person.

Matching an event or preparing a send can raise for two very different reasons. The input itself
can be bad (a number too large for a column, a value no code path expected, a template that breaks
on one contact's data): then trying again raises again, forever, and holds up everything queued
behind it. Or the world can be briefly broken (the database restarting, the broker unreachable):
then trying again later is exactly right, and marking the work failed would drop it. Only the
second kind is "transient"; everything else that one piece of work raises is that work's own fault.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What a stored error message may hold: enough to see the cause, small enough for an admin list.
ERROR_CHARS = 1000

# OperationalError covers a lost or refused connection, a restart, a deadlock, a serialization
# failure and a statement timeout; InterfaceError a connection already closed. A DataError or
# IntegrityError, by contrast, is what one row's data did, and happens again on every retry.
# OSError covers sockets (a broker or provider unreachable), which no input can cause.
_TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    RedisConnectionError,
    RedisTimeoutError,
)


def error_is_transient(exc: BaseException) -> bool:
    """True when the error says the infrastructure failed, not the input: retry, do not mark failed."""
    return isinstance(exc, _TRANSIENT)


def error_summary(exc: BaseException) -> str:
    """ "<ExceptionType>: <message>" on one line, bounded, safe to store in any text column."""
    try:
        message = str(exc)
    except Exception:  # an exception whose __str__ raises must still be reported
        message = "(the error's message could not be read)"
    # PostgreSQL text cannot hold NUL, and a one-line summary reads better in a list.
    text = f"{type(exc).__name__}: {message}".replace("\x00", "\\x00")
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
