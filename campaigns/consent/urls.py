"""The public consent pages, mounted at /u/: what the links in every email point to."""

from __future__ import annotations

from django.urls import path

from campaigns.consent import views

urlpatterns = [
    path("<str:token>/", views.unsubscribe, name="consent-unsubscribe"),
    path("<str:token>/preferences/", views.preferences_save, name="consent-preferences"),
]
