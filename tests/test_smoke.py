from __future__ import annotations

from campaigns.models import Rule, Template
from tests.conftest import identify, run_worker, track


def test_it_sends_the_welcome_once_through_sendgrid(api, sendgrid):
    template = Template.objects.create(name="Welcome", subject="Hi {{ contact.first_name }}", text_body="Welcome")
    Rule.objects.create(name="welcome", trigger_event="user_signup", template=template)
    response = api.batch([identify("u1", "u1@example.com", first_name="Ann"), track("user_signup", "u1")])
    assert response.status_code == 200, response.content
    run_worker()
    assert [(m.to, m.subject) for m in sendgrid.accepted] == [(["u1@example.com"], "Hi Ann")]
