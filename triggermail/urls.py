from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("v1/", include("events.urls")),
    # TriggerMail's admin site (campaigns.admin_site) with the Dashboard, preview and simulator.
    path("admin/", admin.site.urls),
    # Unsubscribe and email preferences, linked from every email (see campaigns.consent.policy).
    path("u/", include("campaigns.consent.urls")),
    # SendGrid's Event Webhook: /anymail/sendgrid/tracking/ (see campaigns.sending.webhooks).
    path("anymail/", include("anymail.urls")),
]
