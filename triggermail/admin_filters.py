"""Admin list filters that every app's admin uses."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest


def null_filter(
    *, title: str, parameter: str, field: str, empty: tuple[str, str], filled: tuple[str, str]
) -> type[admin.SimpleListFilter]:
    """A list filter on whether a nullable time is set, in the words people use for the two cases:
    e.g. revoked_at empty is "Active", processed_at empty is "Waiting"."""

    class NullFilter(admin.SimpleListFilter):
        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [empty, filled]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            if self.value() in (empty[0], filled[0]):
                return queryset.filter(**{f"{field}__isnull": self.value() == empty[0]})
            return queryset

    NullFilter.title = title
    NullFilter.parameter_name = parameter
    return NullFilter
