from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

# A 403 inside Admin is shown in the Admin layout, with what is missing and a way back. Named, not
# imported: the project package does not import the apps (see the import contracts in pyproject.toml).
handler403 = "campaigns.admin.forbidden.permission_denied"

urlpatterns = [
    path("v1/", include("events.urls")),
    # TriggerMail's admin site (campaigns.admin_site) with the Dashboard, preview and simulator.
    path("admin/", admin.site.urls),
    # Unsubscribe and email preferences, linked from every email (see campaigns.consent.policy).
    path("u/", include("campaigns.consent.urls")),
    # SendGrid's Event Webhook: /anymail/sendgrid/tracking/ (see campaigns.sending.webhooks). Our view,
    # which checks the body's shape before Anymail parses it, comes first and takes Anymail's path.
    path("anymail/", include("campaigns.sending.urls")),
    path("anymail/", include("anymail.urls")),
    # For operators: /healthz, /readyz and /metrics (see campaigns.operations and README, Operations).
    path("", include("campaigns.operations.urls")),
]
