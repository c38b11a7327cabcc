"""Send windows in the contact's time zone: pure arithmetic, including the real DST changes of 2026."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from campaigns.matching.windows import SendWindow, window_next_open, zone_resolve
from tests.steps import window_is_open

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")
EIGHT, EIGHT_PM = time(8), time(20)


def at(text: str, zone: ZoneInfo = UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_send_due_inside_the_window_stays_where_it_is():
    due = at("2026-03-02T10:15", PARIS)
    assert window_next_open(due, PARIS, EIGHT, EIGHT_PM) == due


def test_a_send_due_at_3am_local_goes_out_at_8am_local():
    assert window_next_open(at("2026-03-02T03:00", PARIS), PARIS, EIGHT, EIGHT_PM) == utc("2026-03-02T07:00")


def test_a_send_due_after_the_window_closes_waits_for_the_next_morning():
    assert window_next_open(at("2026-03-02T20:00", PARIS), PARIS, EIGHT, EIGHT_PM) == utc("2026-03-03T07:00")


def test_3am_on_the_spring_forward_night_in_paris_goes_out_at_8am_summer_time():
    # 2026-03-29: clocks jump 02:00 → 03:00; 08:00 CEST is 06:00 UTC (the day before it was 07:00).
    assert window_next_open(utc("2026-03-29T01:00"), PARIS, EIGHT, EIGHT_PM) == utc("2026-03-29T06:00")
    assert window_next_open(utc("2026-03-28T02:00"), PARIS, EIGHT, EIGHT_PM) == utc("2026-03-28T07:00")


def test_3am_on_the_fall_back_night_in_paris_goes_out_at_8am_winter_time():
    # 2026-10-25: clocks go back 03:00 → 02:00; 08:00 CET is 07:00 UTC.
    assert window_next_open(utc("2026-10-25T02:00"), PARIS, EIGHT, EIGHT_PM) == utc("2026-10-25T07:00")


def test_new_york_dst_changes_move_the_opening_with_the_clocks():
    # 2026-03-08: 08:00 EDT is 12:00 UTC; 2026-11-01: 08:00 EST is 13:00 UTC.
    assert window_next_open(at("2026-03-08T03:00", NEW_YORK), NEW_YORK, EIGHT, EIGHT_PM) == utc("2026-03-08T12:00")
    assert window_next_open(at("2026-11-01T03:00", NEW_YORK), NEW_YORK, EIGHT, EIGHT_PM) == utc("2026-11-01T13:00")


def test_an_opening_the_clocks_skip_opens_as_much_later_as_they_jumped():
    # 02:30 does not exist in Paris on 2026-03-29: the window opens at 03:30 CEST (01:30 UTC).
    opening = window_next_open(utc("2026-03-28T23:00"), PARIS, time(2, 30), time(6))
    assert opening == utc("2026-03-29T01:30")
    assert opening.astimezone(PARIS).time() == time(3, 30)


def test_an_opening_the_clocks_show_twice_is_its_first_occurrence():
    # 02:30 happens twice in Paris on 2026-10-25, first in summer time (00:30 UTC).
    assert window_next_open(utc("2026-10-24T23:00"), PARIS, time(2, 30), time(6)) == utc("2026-10-25T00:30")


def test_a_window_the_jump_swallows_is_skipped_to_the_next_day():
    # 02:00-03:00 does not exist on the spring-forward night: the next one opens on the 30th.
    assert window_next_open(utc("2026-03-28T23:30"), PARIS, time(2), time(3)) == utc("2026-03-30T00:00")


def test_a_window_across_midnight_is_open_in_the_small_hours():
    late = SendWindow(start=time(20), end=time(2))
    assert window_is_open(at("2026-03-02T23:30", PARIS), PARIS, late)
    assert window_is_open(at("2026-03-03T01:59", PARIS), PARIS, late)
    assert window_next_open(at("2026-03-03T02:00", PARIS), PARIS, late.start, late.end) == at("2026-03-03T20:00", PARIS)


def test_a_window_across_midnight_counts_the_day_it_opens():
    # Friday only, 20:00-02:00: open early Saturday, closed early Friday (that is Thursday's window).
    assert window_is_open(at("2026-03-07T01:00", PARIS), PARIS, SendWindow(time(20), time(2), (4,)))
    opening = window_next_open(at("2026-03-06T01:00", PARIS), PARIS, time(20), time(2), (4,))
    assert opening == at("2026-03-06T20:00", PARIS)


def test_weekdays_only_moves_a_saturday_send_to_monday_morning():
    # 2026-03-07 is a Saturday.
    due = at("2026-03-07T10:00", NEW_YORK)
    assert window_next_open(due, NEW_YORK, EIGHT, EIGHT_PM, [0, 1, 2, 3, 4]) == at("2026-03-09T08:00", NEW_YORK)


def test_equal_start_and_end_means_the_whole_day():
    assert window_next_open(at("2026-03-07T03:00", PARIS), PARIS, time(0), time(0), [0]) == at(
        "2026-03-09T00:00", PARIS
    )
    assert window_next_open(at("2026-03-09T03:00", PARIS), PARIS, time(0), time(0), [0]) == at(
        "2026-03-09T03:00", PARIS
    )


def test_an_unknown_zone_falls_back_to_the_default_zone_then_utc():
    assert zone_resolve("Europe/Paris", "UTC") == PARIS
    assert zone_resolve("Mars/Olympus", "America/New_York") == NEW_YORK
    assert zone_resolve("", "Nowhere/Land") == UTC


def test_a_window_reads_as_a_marketer_would_say_it():
    assert SendWindow(time(8), time(20), (0, 1, 2, 3, 4)).describe() == "between 08:00 and 20:00 on Monday to Friday"
    assert SendWindow(time(0), time(0), (5, 6)).describe() == "at any hour on Saturday, Sunday"
