"""The 403 page inside Admin: a marketer who opens a page their group does not include (write keys,
users) sees the Admin's header, what they are missing, and a way back, instead of a bare
"403 Forbidden".

`permission_denied` is the project's `handler403` (triggermail/urls.py); pages outside Admin keep
Django's plain answer.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import defaults

# The last part of an Admin URL name → the permission that page asks for.
PAGE_PERMISSIONS = {"changelist": "view", "change": "view", "history": "view", "add": "add", "delete": "delete"}


def missing_permission(request: HttpRequest) -> str | None:
    """ "view write keys", for the model page asked for; None for other pages."""
    match = request.resolver_match
    # Django marks each model page's view with the ModelAdmin that serves it.
    model_admin = getattr(match.func, "model_admin", None) if match is not None else None
    action = (match.url_name or "").rsplit("_", 1)[-1] if match is not None else ""
    if model_admin is None or action not in PAGE_PERMISSIONS:
        return None
    return f"{PAGE_PERMISSIONS[action]} {model_admin.opts.verbose_name_plural}"


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Admin's 403, in the Admin layout for staff; Django's default anywhere else."""
    user = getattr(request, "user", None)
    if not request.path.startswith(reverse("admin:index")) or user is None or not user.is_active or not user.is_staff:
        return defaults.permission_denied(request, exception or PermissionDenied())
    groups = ", ".join(user.groups.order_by("name").values_list("name", flat=True))
    context = {
        **admin.site.each_context(request),
        "title": "403 Forbidden",
        "missing": missing_permission(request),
        "groups": groups,
        "reason": str(exception or ""),
    }
    return TemplateResponse(request, "admin/403.html", context, status=403)
