"""Hypothesis strategies: arbitrary JSON as backends send it, and the rules, contacts and clocks
that matching decides on.

`json_values()` is what the ingest API admits (finite numbers — but integers up to 10**400 —, text
without NUL, nesting up to its 32 levels) and, with `unstorable=True`, also what only a marketer's
JSON in Admin can carry (NaN, infinities, NUL). Either way it leans on the values that broke or
could break something: huge and tiny numbers, numbers written as text ("1e309", "NaN", "-inf"),
empty and very long strings, lists where objects are expected, deep nesting and unicode.
Each strategy is built once (cached): building Hypothesis strategies costs more than drawing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from campaigns.matching.conditions import ConditionData
from campaigns.matching.rules import ContactData, EventData, RuleData
from campaigns.matching.windows import SendWindow

# A fifth of the profile's examples for properties that hit the database on every example.
DB_EXAMPLES = max(10, (settings.default.max_examples if settings.default else 100) // 5)

HUGE = 10**400
EDGE_INTS = [0, -1, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**308, 17 * 10**307, 10**309, HUGE, -HUGE]
EDGE_FLOATS = [-0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7e308, 1e16, 0.1, 50.0]
NUMBER_TEXTS = [
    *("1e309", "-1e309", "1e-400", "1E+999999999", "9" * 400, "NaN", "nan", "-inf", "Infinity", "sNaN"),
    *("50", "50.0", " 50 ", "\u0665\u0660", "1_000", "0x10", "-0", "", " ", "1e", "e5", ".", "+"),
]
# Property and trait names the rules below read, so that conditions and dedupe properties hit.
KEYS = ["value", "total", "revenue", "order_id", "plan", "cart", "items", "0", "first_name", "products"]
PATHS = [*KEYS, "cart.value", "items.0", "items.0.price", "cart.items.1", "products.0.name", "a.²", "items.99999999999"]
ZONES = ["", "UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kathmandu"]
BAD_ZONES = [
    "Mars/Olympus",
    "../etc/passwd",
    "/etc/localtime",
    "America",
    "zone.tab",
    "Europe/Paris/",
    "\x00",
    "a" * 300,
]
# Instants near daylight saving changes (and Samoa skipping 30 December 2011), where local days
# have 23 or 25 hours or none at all.
TRANSITIONS = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2011, 12, 30, 10, tzinfo=UTC),
]
EARLIEST, LATEST = datetime(1970, 1, 2, tzinfo=UTC), datetime(2999, 12, 1, tzinfo=UTC)
OPERATORS = ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists", "not_exists"]
DEDUPE_POLICIES = ["per_event", "per_user_day", "once_per_user", "per_property"]


@cache
def _long_text() -> st.SearchStrategy[str]:
    # Built by repetition: drawing thousands of characters one by one would make every example slow.
    return st.builds(lambda chunk, times: chunk * times, st.text(min_size=1, max_size=3), st.integers(100, 4000))


@cache
def texts(*, unstorable: bool = False) -> st.SearchStrategy[str]:
    # Hypothesis's text never has lone surrogates; NUL is excluded unless asked for.
    plain = st.text() if unstorable else st.text(alphabet=st.characters(blacklist_characters="\x00"))
    long = _long_text() if unstorable else _long_text().map(lambda text: text.replace("\x00", ""))
    return st.one_of(plain, st.sampled_from(NUMBER_TEXTS), long)


@cache
def numbers(*, unstorable: bool = False) -> st.SearchStrategy[int | float]:
    floats = st.floats(allow_nan=unstorable, allow_infinity=unstorable)
    return st.one_of(
        st.integers(), st.integers(-HUGE, HUGE), st.sampled_from(EDGE_INTS), floats, st.sampled_from(EDGE_FLOATS)
    )


@cache
def scalars(*, unstorable: bool = False) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), numbers(unstorable=unstorable), texts(unstorable=unstorable))


def _nested(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"value": value}
    return value


@cache
def json_values(*, unstorable: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars, lists and objects, a few levels deep, or one chain 31 levels deep."""
    leaves = scalars(unstorable=unstorable)
    keys = st.one_of(st.sampled_from(KEYS), texts(unstorable=unstorable))
    tree = st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=12,
    )
    deep = st.builds(_nested, leaves, st.integers(1, 31), st.booleans())
    return st.one_of(tree, deep)


@cache
def json_objects(*, unstorable: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Event properties or contact traits: an object whose values are any JSON."""
    keys = st.one_of(st.sampled_from(KEYS), texts(unstorable=unstorable))
    return st.dictionaries(keys, json_values(unstorable=unstorable), max_size=6)


@cache
def instants() -> st.SearchStrategy[datetime]:
    """Aware UTC instants in the range ingest accepts, often minutes from a daylight saving change."""
    near_change = st.builds(
        lambda t, m: t + timedelta(minutes=m), st.sampled_from(TRANSITIONS), st.integers(-1500, 1500)
    )
    anywhere = st.datetimes(min_value=EARLIEST.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None))
    return st.one_of(near_change, anywhere.map(lambda moment: moment.replace(tzinfo=UTC)))


@cache
def zone_names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(ZONES), st.sampled_from(BAD_ZONES), st.text(max_size=20))


@cache
def durations(*, most_days: int = 60) -> st.SearchStrategy[timedelta]:
    return st.one_of(st.just(timedelta(0)), st.integers(1, most_days * 86400).map(lambda s: timedelta(seconds=s)))


@cache
def windows() -> st.SearchStrategy[SendWindow | None]:
    wall = st.times().map(lambda t: t.replace(microsecond=0)) | st.sampled_from(
        [time(0), time(2, 30), time(8), time(20)]
    )
    days = st.lists(st.integers(0, 6), unique=True, max_size=7).map(tuple)
    return st.none() | st.builds(SendWindow, start=wall, end=wall, days=days)


@cache
def conditions() -> st.SearchStrategy[ConditionData]:
    values = st.one_of(json_values(unstorable=True), st.sampled_from(NUMBER_TEXTS), st.sampled_from(EDGE_INTS))
    sources = st.sampled_from(["property", "trait"])
    return st.builds(
        ConditionData, source=sources, key=st.sampled_from(PATHS), operator=st.sampled_from(OPERATORS), value=values
    )


@st.composite
def rules(draw: st.DrawFn, *, rule_id: int, trigger_event: str) -> RuleData:
    return RuleData(
        id=rule_id,
        name=draw(st.text(max_size=20)),
        trigger_event=trigger_event if draw(st.integers(0, 9)) else "other_event",
        template_name="Template",
        active=draw(st.integers(0, 9)) > 0,
        delay=draw(durations()),
        cooldown=draw(durations()),
        conditions=tuple(draw(st.lists(conditions(), max_size=3))),
        exit_events=tuple(draw(st.lists(st.sampled_from(["order_completed", trigger_event]), max_size=2))),
        dedupe_policy=draw(st.sampled_from(DEDUPE_POLICIES)),
        dedupe_property=draw(st.sampled_from(PATHS) | st.text(max_size=10)),
        category=draw(st.sampled_from(["marketing", "transactional"])),
        topic=draw(st.sampled_from(["", "Cart reminders"])),
        window=draw(windows()),
        cap_count=draw(st.none() | st.integers(0, 5)),
        cap_period=draw(durations()),
        capped_action=draw(st.sampled_from(["skip", "delay"])),
    )


@st.composite
def worlds(draw: st.DrawFn, *, unstorable: bool = True) -> tuple[EventData, ContactData, list[RuleData], datetime]:
    """An event, its contact with prior sends and live keys, the rules and the time of matching."""
    now = draw(instants())
    name = draw(st.sampled_from(["cart_abandoned", "order_completed"]))
    occurred_at = max(now - draw(durations(most_days=400)), EARLIEST)
    user_id = draw(st.text(min_size=1, max_size=255) if unstorable else texts().filter(bool).map(lambda t: t[:255]))
    event = EventData(
        draw(st.integers(1, 2**62)), name, user_id, draw(json_objects(unstorable=unstorable)), occurred_at
    )
    ruleset = draw(st.lists(st.integers(1, 8), max_size=4, unique=True).map(lambda ids: ids))
    built = [draw(rules(rule_id=rule_id, trigger_event=name)) for rule_id in ruleset]
    prior = st.lists(st.builds(lambda d, sign: now + d * sign, durations(), st.sampled_from([1, -1])), max_size=3)
    contact = ContactData(
        user_id=user_id,
        email=draw(st.sampled_from(["", "ann@example.com"])),
        timezone=draw(zone_names()),
        traits=draw(json_objects(unstorable=unstorable)),
        send_times={rule_id: tuple(draw(prior)) for rule_id in ruleset},
        live_keys=frozenset(draw(st.lists(st.text(max_size=40), max_size=2))),
        fallback_timezone=draw(zone_names()),
        unsubscribed=draw(st.integers(0, 9)) == 0,
        unsubscribed_topics=frozenset(draw(st.lists(st.sampled_from(["Cart reminders", "News"]), max_size=1))),
        suppressed=draw(st.sampled_from(["", "", "", "bounced"])),
    )
    return event, contact, built, now
