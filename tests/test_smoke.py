from __future__ import annotations

from tests import baker_recipes
from tests.conftest import identify, run_worker, track


def test_it_sends_the_welcome_once_through_sendgrid(api, sendgrid):
    template = baker_recipes.template.make(subject="Hi {{ contact.first_name }}")
    baker_recipes.rule.make(trigger_event="user_signup", template=template)
    response = api.batch([identify("u1", "u1@example.com", first_name="Ann"), track("user_signup", "u1")])
    assert response.status_code == 200, response.content
    run_worker()
    assert [(m.to, m.subject) for m in sendgrid.accepted] == [(["u1@example.com"], "Hi Ann")]
