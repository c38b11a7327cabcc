"""A/B variants in the rule's page: the inline that edits them, and ending a test by promoting one."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from campaigns.authoring.variants import PromoteError, variant_promote, variants_errors
from campaigns.models import Rule, RuleVariant


class VariantFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("name")
        ]
        variants = [
            {"name": data["name"], "template": data["template"].name if data.get("template") else None,
             "weight": data.get("weight") or 0}
            for data in kept
        ]  # fmt: skip
        templates = {data["template"].name: data["template"] for data in kept if data.get("template")}
        rule_template = self.instance.template if self.instance.template_id else None
        problems = variants_errors(variants, rule_template=rule_template, templates=templates)
        if problems:
            raise ValidationError([problem[0].upper() + problem[1:] + "." for problem in problems])


class RuleVariantInline(admin.TabularInline):
    model = RuleVariant
    formset = VariantFormSet
    fields = ["name", "template", "weight"]
    extra = 0
    verbose_name = "A/B variant"
    # No "template" in the heading: it labels the fieldset, and the rule's own Template field must
    # stay the one field a label search for "Template" finds.
    verbose_name_plural = (
        "A/B variants (optional: each contact always gets the same one, by weight; "
        "a row with nothing to send is the holdout)"
    )


class PromoteAdminMixin:
    """The rule admin's "promote variant" page: confirm, then end the test (recorded in history)."""

    admin_site: admin.AdminSite

    def get_urls(self) -> list[URLPattern]:
        promote = path(
            "<path:object_id>/promote/",
            self.admin_site.admin_view(self.promote_view),
            name="campaigns_rule_promote",
        )
        # Before the admin's own patterns, whose "<path:object_id>/" would swallow this one.
        return [promote, *super().get_urls()]  # type: ignore[misc]

    def promote_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm("campaigns.change_rule"):
            raise PermissionDenied
        rule = Rule.objects.select_related("template").filter(pk=unquote(object_id)).first()
        if rule is None:
            raise Http404(f"No rule with id {object_id}.")
        name = request.POST.get("variant") if request.method == "POST" else request.GET.get("variant")
        variant = rule.variants.select_related("template").filter(name=name or "").first()
        change_url = reverse("admin:campaigns_rule_change", args=[rule.pk])
        if request.method == "POST":
            try:
                variant_promote(rule, name or "", user=request.user.get_username())
            except PromoteError as exc:
                messages.error(request, str(exc))
                return HttpResponseRedirect(change_url)
            messages.success(request, f"Promoted variant {name} of {rule.name}: the test is over and every contact "
                                      "now gets its template. Recorded in the rule's history.")  # fmt: skip
            return HttpResponseRedirect(change_url)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Promote variant {name} of {rule.name}",
            "rule": rule,
            "variant": variant,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/campaigns/rule/promote.html", context)
