from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("v1/", include("events.urls")),
    path("admin/", admin.site.urls),
    # SendGrid's Event Webhook: /anymail/sendgrid/tracking/ (see campaigns.webhooks).
    path("anymail/", include("anymail.urls")),
]
