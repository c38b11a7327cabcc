"""Languages: a template's translations, picked by the contact's locale with the fallback chain
pt-BR → pt → the template's default, named in the decision trace, previewed and test-sent in a
chosen language, edited in Admin and carried by campaign files."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from campaigns.authoring.transfer import RulesFileError, document_dumps, rules_export, rules_import
from campaigns.matching.locales import LocaleError, locale_normalize, locale_pick
from campaigns.matching.rules import ContactData, EventData, RuleData, rules_matching
from campaigns.models import Decision, Template, TemplateTranslation
from tests import baker_recipes
from tests.conftest import run_worker, track
from tests.world import rule_make, template_make

NOW = datetime.fromisoformat("2026-03-02T10:00:00+00:00")
AVAILABLE = {"fr", "pt", "pt-BR", "zh-Hant"}


@pytest.mark.parametrize(
    ("locale", "picked"),
    [
        ("pt-BR", "pt-BR"),  # its own translation
        ("pt-PT", "pt"),  # the language's
        ("pt_br", "pt-BR"),  # written the way devices send it
        ("fr-CA", "fr"),
        ("zh-Hant-TW", "zh-Hant"),
        ("de", ""),  # no translation: the default
        ("", ""),  # no locale: the default
        ("english", ""),  # not a language tag: the default
    ],
)
def test_the_contacts_locale_picks_a_translation_by_the_fallback_chain(locale, picked):
    assert locale_pick(locale, AVAILABLE) == picked


def test_a_locale_is_normalized_or_refused_with_what_to_write():
    assert [locale_normalize(t) for t in ("pt_br", "PT-br", " fr ", "en")] == ["pt-BR", "pt-BR", "fr", "en"]
    with pytest.raises(LocaleError, match=re.escape("'english' is not a language tag; write e.g. en, fr or pt-BR.")):
        locale_normalize("english")


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("pt-BR", "language pt (contact locale pt-BR)"),
        ("de", "language the template's default (contact locale de)"),
        ("", "language the template's default (contact has no locale)"),
    ],
)
def test_the_decision_says_which_language_was_used(locale, words):
    rule = RuleData(id=1, name="Welcome", trigger_event="user_signup", template_name="W", locales=frozenset({"pt"}))
    event = EventData(id=1, name="user_signup", user_id="u1", properties={}, occurred_at=NOW)
    contact = ContactData(user_id="u1", email="u1@example.com", locale=locale)

    [decision] = rules_matching(event, contact, [rule], NOW)

    assert decision.detail.endswith(f"; {words}")


def test_a_template_without_translations_says_nothing_of_languages():
    rule = RuleData(id=1, name="Welcome", trigger_event="user_signup", template_name="W")
    event = EventData(id=1, name="user_signup", user_id="u1", properties={}, occurred_at=NOW)
    [decision] = rules_matching(event, ContactData(user_id="u1", email="u@example.com", locale="fr"), [rule], NOW)
    assert "language" not in decision.detail


@pytest.fixture
def welcome(db: None) -> Template:
    template = template_make("Welcome", subject="Welcome, {{ contact.first_name }}", text_body="Hello")
    baker_recipes.translation.make(template=template, locale="pt", subject="Bem-vindo, {{ contact.first_name }}",
                                   text_body="Olá")  # fmt: skip
    baker_recipes.translation.make(template=template, locale="fr", subject="Bienvenue, {{ contact.first_name }}",
                                   text_body="Bonjour", html_body="<p>Bonjour</p>")  # fmt: skip
    rule_make("Welcome", "user_signup", template=template)
    return template


def test_each_contact_gets_the_email_in_their_language(welcome, api, sendgrid):
    people = [("u-br", "pt-BR"), ("u-fr", "fr-FR"), ("u-de", "de"), ("u-none", "")]
    api.batch([
        {"type": "identify", "userId": user, "traits": {"email": f"{user}@example.com", "first_name": "Ann"},
         "context": {"locale": locale} if locale else {}}
        for user, locale in people
    ])  # fmt: skip
    api.batch([track("user_signup", user) for user, _ in people])

    run_worker()

    subjects = {m.to[0]: (m.subject, m.payload["content"][0]["value"]) for m in sendgrid.accepted}
    assert subjects == {
        "u-br@example.com": ("Bem-vindo, Ann", "Olá"),
        "u-fr@example.com": ("Bienvenue, Ann", "Bonjour"),
        "u-de@example.com": ("Welcome, Ann", "Hello"),
        "u-none@example.com": ("Welcome, Ann", "Hello"),
    }
    details = {d.event.user_id: d.detail for d in Decision.objects.select_related("event")}
    assert details["u-br"].endswith("; language pt (contact locale pt-BR)")
    assert details["u-de"].endswith("; language the template's default (contact locale de)")


def test_the_event_page_shows_the_language_in_the_trace(welcome, api, sendgrid, admin_client):
    api.batch([{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com", "locale": "fr"}},
               track("user_signup", "u1")])  # fmt: skip
    run_worker()
    decision = Decision.objects.get()

    page = admin_client.get(f"/admin/events/event/{decision.event_id}/change/").content.decode()

    assert "language fr (contact locale fr)" in page


# --- Admin --------------------------------------------------------------------------------------


def template_form(**fields: str) -> dict[str, str]:
    return {
        "name": "Welcome",
        "category": "marketing",
        "subject": "Welcome",
        "text_body": "Hello",
        "translations-TOTAL_FORMS": "1",
        "translations-INITIAL_FORMS": "0",
        "translations-0-locale": "pt_br",
        "translations-0-subject": "Bem-vindo",
        "translations-0-text_body": "Olá",
        **fields,
    }


def test_a_marketer_adds_a_translation_and_its_locale_is_normalized(admin_client, db):
    response = admin_client.post("/admin/campaigns/template/add/", template_form())

    assert response.status_code == 302
    assert list(TemplateTranslation.objects.values_list("locale", "subject")) == [("pt-BR", "Bem-vindo")]
    listing = admin_client.get("/admin/campaigns/template/").content.decode()
    assert '<td class="field-languages">pt-BR</td>' in listing


def test_a_marketer_in_the_marketing_group_may_add_translations(maria):
    assert maria.post("/admin/campaigns/template/add/", template_form()).status_code == 302
    assert TemplateTranslation.objects.get().locale == "pt-BR"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"translations-0-locale": "portuguese"}, "&#x27;portuguese&#x27; is not a language tag"),
        ({"translations-0-subject": "{% if %}"}, "Line 1:"),
        ({"translations-0-subject": "", "translations-0-text_body": ""}, "Give this language a subject"),
        (
            {"translations-TOTAL_FORMS": "2", "translations-1-locale": "pt-BR", "translations-1-subject": "Oi",
             "translations-1-text_body": "Oi"},
            "Please correct the duplicate data for locale",
        ),
    ],
)  # fmt: skip
def test_a_bad_translation_is_named_and_nothing_is_saved(admin_client, db, fields, message):
    response = admin_client.post("/admin/campaigns/template/add/", template_form(**fields))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Template.objects.exists()


# --- Preview and test email ---------------------------------------------------------------------


def test_the_preview_shows_the_email_for_a_locale_by_the_fallback_chain(welcome, admin_client):
    url = f"/admin/campaigns/template/{welcome.pk}/preview/"

    french = admin_client.get(url, {"locale": "fr-CA"}).content.decode()
    default = admin_client.get(url, {"locale": "de"}).content.decode()

    assert 'id="preview-subject">Bienvenue,</td>' in french
    assert "fr translation (for locale fr-CA)" in french
    assert 'id="preview-subject">Welcome,</td>' in default
    assert "the template&#x27;s default (no translation for de)" in default


def test_a_test_email_goes_out_in_the_chosen_language(welcome, admin_client, sendgrid):
    url = f"/admin/campaigns/template/{welcome.pk}/preview/"
    sample = json.dumps({"event": {}, "contact": {"first_name": "Ann", "email": "ann@example.com"}})
    data = {"event": "", "sample": sample, "locale": "pt-BR", "to": "me@example.com", "_language": "1"}

    # Asking for the language loads its saved content into the editable fields; then it is sent.
    page = admin_client.post(url, data).content.decode()
    assert 'id="preview-subject">Bem-vindo, Ann</td>' in page
    fields = {"subject": "Bem-vindo, {{ contact.first_name }}", "text_body": "Olá", "html_body": "",
              "sendgrid_template_id": ""}  # fmt: skip
    admin_client.post(url, {**data, **fields, "_send": "1"})

    [message] = sendgrid.accepted
    assert (message.to, message.subject) == (["me@example.com"], "[Test] Bem-vindo, Ann")


def test_the_preview_names_a_locale_that_is_not_a_tag(welcome, admin_client):
    sample = json.dumps({"event": {}, "contact": {}})
    page = admin_client.post(
        f"/admin/campaigns/template/{welcome.pk}/preview/", {"event": "", "sample": sample, "locale": "klingon!"}
    ).content.decode()
    assert "&#x27;klingon!&#x27; is not a language tag" in page


# --- Campaign files -----------------------------------------------------------------------------


def test_translations_round_trip_through_a_campaign_file(welcome):
    text = document_dumps(rules_export())
    translations = json.loads(text)["templates"]["Welcome"]["translations"]
    assert sorted(translations) == ["fr", "pt"]
    assert translations["fr"] == {"html_body": "<p>Bonjour</p>", "sendgrid_template_id": "",
                                  "subject": "Bienvenue, {{ contact.first_name }}", "text_body": "Bonjour"}  # fmt: skip

    Template.objects.filter(pk=welcome.pk).update(name="Old")
    TemplateTranslation.objects.all().delete()
    report = rules_import(json.loads(text))
    assert "created template 'Welcome'" in report.lines()

    TemplateTranslation.objects.filter(locale="fr").update(subject="Salut")
    assert "updated template 'Welcome' (translations)" in rules_import(json.loads(text)).lines()
    assert rules_import(json.loads(text)).lines() == ["Nothing to change: 2 unchanged."]
    assert (
        json.loads(document_dumps(rules_export()))["templates"]["Welcome"] == json.loads(text)["templates"]["Welcome"]
    )


def test_a_file_with_a_bad_translation_is_refused_naming_it(db):
    translations = {"xx-nope!": {"subject": "Oi", "text_body": "Oi"}}
    document = {"format": 1, "templates": {"W": {"subject": "Hi", "text_body": "Hello", "translations": translations}}}
    with pytest.raises(RulesFileError) as raised:
        rules_import(document)
    assert raised.value.errors == [
        "template 'W': translations: xx-nope!: locale: 'xx-nope!' is not a language tag; write e.g. en, fr or pt-BR."
    ]


def test_a_new_translation_is_live_for_the_next_batch_with_no_restart(welcome):
    from campaigns.matching.rules_cache import rules_in_force

    assert [rule.locales for rule in rules_in_force()[1]] == [frozenset({"fr", "pt"})]
    baker_recipes.translation.make(template=welcome, locale="de", subject="Willkommen")

    assert [rule.locales for rule in rules_in_force()[1]] == [frozenset({"de", "fr", "pt"})]
