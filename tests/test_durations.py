"""Durations as marketers type them in the admin, and back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from campaigns.authoring.durations import duration_format, duration_parse, duration_words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 minutes", timedelta(minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2 days, 4 hours", timedelta(days=2, hours=4)),
        ("1 hour and 15 minutes", timedelta(hours=1, minutes=15)),
        ("1.5 hours", timedelta(minutes=90)),
        ("2 Weeks", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        ("0", timedelta(0)),
        ("", timedelta(0)),
        ("immediately", timedelta(0)),
    ],
)
def test_it_reads_durations_as_people_write_them(text, expected):
    assert duration_parse(text) == expected


@pytest.mark.parametrize("text", ["5", "-5 minutes", "ten minutes", "1 hour 30", "3 fortnights", "1h x 2m", "1e3 s"])
def test_it_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match=r"duration|unit"):
        duration_parse(text)


def test_an_absurdly_long_duration_is_a_value_error_not_a_crash():
    with pytest.raises(ValueError, match="too long"):
        duration_parse("99999999999 weeks")


@pytest.mark.parametrize(
    "value", [timedelta(0), timedelta(minutes=90), timedelta(days=9, seconds=5), timedelta(weeks=3, hours=1)]
)
def test_the_short_form_reads_back_exactly(value):
    assert duration_parse(duration_format(value)) == value


def test_the_long_form_reads_like_a_sentence():
    assert duration_words(timedelta(hours=1, minutes=30)) == "1 hour 30 minutes"
    assert duration_words(timedelta(days=2)) == "2 days"
    assert duration_words(timedelta(0)) == "no time"
