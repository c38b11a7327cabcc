"""The public consent pages, mounted at /u/: what the links in every email point to."""

from __future__ import annotations

from django.urls import path

from campaigns import unsubscribe_views

urlpatterns = [
    path("<str:token>/", unsubscribe_views.unsubscribe, name="consent-unsubscribe"),
    path("<str:token>/preferences/", unsubscribe_views.preferences_save, name="consent-preferences"),
]
