"""For operators: liveness, readiness and Prometheus metrics (see README, Operations)."""

from __future__ import annotations

from django.urls import path

from campaigns.operations import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
