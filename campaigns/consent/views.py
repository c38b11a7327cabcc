"""The unsubscribe link and the preference page: no login, the token in the URL is the key.

`/u/<token>/` is the List-Unsubscribe URL. A mailbox provider's one-click POST (RFC 8058) carries
no cookies and no CSRF token, so that endpoint alone is exempt from Django's CSRF check: the
token, which only the recipient has, is what authorizes it, and it can only unsubscribe. A GET
never changes anything (link scanners fetch every URL in an email) and shows the preferences,
whose form posts to `/u/<token>/preferences/` with Django's ordinary CSRF protection (a cookie,
which needs no session).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.consent.policy import contact_resubscribe, contact_topics_set, contact_unsubscribe_all
from campaigns.consent.tokens import TokenState, consent_token_check
from campaigns.models import Category, Template
from events.models import Contact

SAVED_MESSAGES = {
    "unsubscribe_all": "You are unsubscribed from all marketing email.",
    "resubscribe": "You are subscribed to marketing email again.",
    "topics": "Your topics are saved.",
}


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    contact = _contact_for(request, token)
    if not isinstance(contact, Contact):
        return contact
    if request.method == "POST":
        # Any POST here is the one-click unsubscribe (body "List-Unsubscribe=One-Click"); it asks
        # nothing more, because a mailbox provider cannot answer questions.
        contact_unsubscribe_all(contact, now=timezone.now())
        return _page(request, "consent/unsubscribed.html", contact, token)
    return _page(
        request,
        "consent/preferences.html",
        contact,
        token,
        saved=SAVED_MESSAGES.get(request.GET.get("saved", ""), ""),
        topics=[(topic, topic not in contact.unsubscribed_topics) for topic in marketing_topics()],
    )


@require_POST
def preferences_save(request: HttpRequest, token: str) -> HttpResponse:
    contact = _contact_for(request, token)
    if not isinstance(contact, Contact):
        return contact
    action = request.POST.get("action", "")
    if action == "unsubscribe_all":
        contact_unsubscribe_all(contact, now=timezone.now())
    elif action == "resubscribe":
        contact_resubscribe(contact)
    elif action == "topics":
        offered = marketing_topics()
        kept = set(request.POST.getlist("topic"))
        contact_topics_set(contact, left=[topic for topic in offered if topic not in kept], offered=offered)
    else:
        return _page(request, "consent/invalid.html", None, token, status=400)
    # Post/redirect/get: reloading the page shows the result instead of posting again.
    return HttpResponseRedirect(f"{reverse('consent-unsubscribe', args=[token])}?saved={action}")


def marketing_topics() -> list[str]:
    """The topics of marketing templates, which people may leave one by one."""
    topics = Template.objects.filter(category=Category.MARKETING).exclude(topic="").values_list("topic", flat=True)
    return sorted(set(topics))


def _contact_for(request: HttpRequest, token: str) -> Contact | HttpResponse:
    """The contact the token lets this request act for, or the page that says why it cannot."""
    check = consent_token_check(token, now=timezone.now())
    if check.state is TokenState.VALID and check.contact is not None:
        return check.contact
    if check.state is TokenState.INVALID:
        return _page(request, "consent/invalid.html", None, "", status=404)
    # 410 Gone: the link was real but no longer applies. The page names no address and offers
    # no form, so an old or forwarded email can change nothing.
    return _page(
        request,
        "consent/expired.html",
        None,
        "",
        status=410,
        address_changed=check.state is TokenState.ADDRESS_CHANGED,
        token_days=settings.UNSUBSCRIBE_TOKEN_DAYS,
    )


def _page(
    request: HttpRequest, template: str, contact: Contact | None, token: str, *, status: int = 200, **extra: Any
) -> HttpResponse:
    context = {
        "contact": contact,
        "brand_name": settings.BRAND_NAME,
        "brand_color": settings.BRAND_COLOR,
        "brand_logo_url": settings.BRAND_LOGO_URL,
        "save_url": reverse("consent-preferences", args=[token]) if token else "",
        **extra,
    }
    response = render(request, template, context, status=status)
    # The token is a credential: keep it out of Referer headers and shared caches.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response
