from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from campaigns.admin.forbidden import permission_denied
from campaigns.admin.performance import performance_urls
from campaigns.admin.preview import preview_urls
from campaigns.admin.simulator import simulator_urls
from triggermail import health_views

# A 403 inside Admin is shown in the Admin layout, with what is missing and a way back.
handler403 = permission_denied

urlpatterns = [
    path("v1/", include("events.urls")),
    # Before the admin's URLs, which would read "performance" as a model name.
    *performance_urls(),
    # The template preview and the simulator, likewise before the admin's URLs.
    *preview_urls(),
    *simulator_urls(),
    path("admin/", admin.site.urls),
    # Unsubscribe and email preferences, linked from every email (see campaigns.consent).
    path("u/", include("campaigns.consent_urls")),
    # SendGrid's Event Webhook: /anymail/sendgrid/tracking/ (see campaigns.webhooks).
    path("anymail/", include("anymail.urls")),
    # For operators: liveness, readiness and Prometheus metrics (see README, Operations).
    path("healthz", health_views.healthz, name="healthz"),
    path("readyz", health_views.readyz, name="readyz"),
    path("metrics", health_views.metrics, name="metrics"),
]
