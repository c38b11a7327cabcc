"""The page a locked-out login gets (django-axes calls `lockout_response`; settings AXES_*).

In the Admin's own layout, it says what happened, for how long, and how an administrator unlocks at
once; it never says whether the username exists or the password was right.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

# 429 Too Many Requests, as django-axes answers by default: the request was refused for its rate.
LOCKED_OUT = 429


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    minutes = settings.AXES_COOLOFF_TIME.total_seconds() / 60
    context = {
        **admin.site.each_context(request),
        "title": "Login locked",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": f"{minutes:g}",
    }
    response = TemplateResponse(request, "admin/locked_out.html", context, status=LOCKED_OUT)
    return response.render()
