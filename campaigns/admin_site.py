"""The TriggerMail admin site: Django's, with the pages that are not a model's list or form.

The Dashboard, the template preview and the simulator are mounted here, in `get_urls`, the way Django
means an admin site to grow, so they share the admin's login, namespace ("admin:…") and layout. They
come before the site's own URLs, which would read "performance" or "simulator" as a model name and
"preview" as an object id. It lives outside the campaigns.admin package: Django imports this class
when `admin.site` is first used, which is while that package registers its models; importing the
package from here would build a second site. The views are imported when the URLs are built.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path


class TriggerMailAdminSite(admin.AdminSite):
    site_header = "TriggerMail"
    site_title = "TriggerMail"
    index_title = "Rules, templates and what they sent"
    # Django's navigation sidebar takes 300 px of every page: on a 1366 px laptop the rule list and
    # the Dashboard no longer fit beside it. The index and the breadcrumbs lead to every page anyway.
    enable_nav_sidebar = False

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from campaigns.admin.performance import dashboard_view
        from campaigns.admin.preview import template_preview_view
        from campaigns.admin.preview_frame import template_preview_frame_view
        from campaigns.admin.simulator import simulator_view

        # admin_view asks for a staff login; each view checks its own permission.
        own: list[URLResolver | URLPattern] = [
            path("campaigns/performance/", self.admin_view(dashboard_view), name="campaigns_performance"),
            path(
                "campaigns/template/<int:template_id>/preview/",
                self.admin_view(template_preview_view),
                name="campaigns_template_preview",
            ),
            path(
                "campaigns/template/<int:template_id>/preview/frame/<str:token>/",
                self.admin_view(template_preview_frame_view),
                name="campaigns_template_preview_frame",
            ),
            path("campaigns/simulator/", self.admin_view(simulator_view), name="campaigns_simulator"),
        ]
        return own + super().get_urls()
