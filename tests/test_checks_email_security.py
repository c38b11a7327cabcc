"""System checks refuse link and unsubscribe settings that would undo the protections (README, Security)."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from tests.conftest import check_ids


def test_the_defaults_pass():
    assert not check_ids() & {"triggermail.E010", "triggermail.E011", "triggermail.W002"}


@pytest.mark.parametrize("scheme", ["javascript", "data", "vbscript", "", "1http", "ht tp", "JavaScript:"])
def test_a_script_scheme_or_a_malformed_one_in_safe_link_schemes_is_an_error(settings, scheme):
    settings.SAFE_LINK_SCHEMES = ["https", scheme]
    [error] = [m for m in run_checks() if m.id == "triggermail.E010"]
    assert repr(scheme) in error.msg


def test_an_app_scheme_may_be_allowed(settings):
    settings.SAFE_LINK_SCHEMES = ["https", "myshop", "x-app+v2.beta"]
    assert "triggermail.E010" not in check_ids()


@pytest.mark.parametrize(
    ("days", "expected"), [(0, "triggermail.E011"), (-5, "triggermail.E011"), (7, "triggermail.W002")]
)
def test_unsubscribe_links_that_die_too_soon_are_flagged(settings, days, expected):
    settings.UNSUBSCRIBE_TOKEN_DAYS = days
    assert expected in check_ids()
