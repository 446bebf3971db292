"""The callback endpoint the service posts tags to, and the admin views: the panel's actions
(accept, reject, remove, add, suggest) and the review listing."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.models import Page

from .callbacks import PayloadError, apply_callback, parse_callback
from .conf import get_settings
from .decisions import DecisionError, decide
from .models import PageTag
from .panel_context import panel_context
from .preview import PreviewError, preview_draft

log = logging.getLogger("wagtail_autotag.callback")
WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@csrf_exempt
@require_POST
def callback(request):
    """POST from the service: Standard Webhooks signed tags for one article revision."""
    conf = get_settings()
    headers = {name: request.headers.get(name, "") for name in WEBHOOK_HEADERS}
    raw = request.body
    payload, refusal = None, "missing webhook-id, webhook-timestamp or webhook-signature header"
    if all(headers.values()):
        for secret in conf.callback_secrets:  # several during a secret rotation
            try:
                payload = Webhook(secret).verify(raw, headers)
                break
            except WebhookVerificationError as exc:
                refusal = "stale or future webhook-timestamp" if "timestamp" in str(exc) else "bad webhook signature"
            except ValueError:
                return JsonResponse({"error": "the body is not JSON"}, status=400)
    if payload is None:
        log.warning("autotag callback refused: %s (webhook-id %r)", refusal, headers["webhook-id"][:80])
        return JsonResponse({"error": refusal, "field": "webhook-signature"}, status=401)
    try:
        tags = parse_callback(payload)
    except PayloadError as exc:
        return JsonResponse({"error": str(exc), "field": exc.field}, status=422)
    outcome = apply_callback(headers["webhook-id"], tags, payload, conf)
    return JsonResponse({"status": outcome, "article": {"id": tags.article_id, "revision": tags.revision}})


@require_POST
def panel_action(request, page_id: int):
    """A button in the editor's panel; answers the panel's new HTML (or redirects without JS)."""
    page = get_object_or_404(Page, pk=page_id).specific
    if not page.permissions_for_user(request.user).can_edit():
        raise PermissionDenied
    conf = get_settings()
    action = request.POST.get("action", "")
    message, error = "", ""
    try:
        if action == "suggest":
            result = preview_draft(page, conf)
            count = len(result.get("topics", [])) + len(result.get("regions", []))
            message = f"Draft previewed: {count} tag{'s' if count != 1 else ''}."
        else:
            decision = decide(page, request.user, action, request.POST.get("kind", ""), request.POST.get("tag", ""), conf)
            message = {"accepted": "Accepted", "rejected": "Removed", "added": "Added"}[decision.decision] + f" {decision.tag}."
    except (DecisionError, PreviewError) as exc:
        error = str(exc)
    if request.headers.get("x-requested-with") != "fetch":
        return redirect(reverse("wagtailadmin_pages:edit", args=[page.pk]))
    html = render_to_string("wagtail_autotag/panel_body.html", panel_context(page, conf, message=message, error=error), request=request)
    return HttpResponse(html, status=200 if not error else 400)


class ReviewView(WagtailAdminTemplateMixin, TemplateView):
    """Pages whose suggested tags await an editor."""

    template_name = "wagtail_autotag/review.html"
    page_title = "Tags to review"
    header_icon = "tag"
    _show_breadcrumbs = True

    def get_breadcrumbs_items(self):
        return self.breadcrumbs_items + [{"url": "", "label": self.page_title}]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        pending = (Page.objects.filter(autotag_tags__status=PageTag.SUGGESTED)
                   .annotate(suggested=Count("autotag_tags", filter=Q(autotag_tags__status=PageTag.SUGGESTED)),
                             latest=Max("autotag_tags__updated_at"))
                   .order_by("-latest"))
        rows = []
        for page in pending[:200]:
            suggestions = PageTag.objects.filter(page=page, status=PageTag.SUGGESTED).order_by("-score")
            rows.append({"page": page, "suggestions": suggestions, "count": page.suggested, "latest": page.latest})
        context["rows"] = rows
        return context
