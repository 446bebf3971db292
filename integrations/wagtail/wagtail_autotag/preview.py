"""The "Suggest tags" button: the current draft sent to the service's POST /v1/tag, the answer
kept on the page's state (server-side, so it survives a reload or a closed panel)."""

from __future__ import annotations

from django.utils import timezone

from . import client
from .article import page_article
from .conf import AutotagSettings
from .models import PageTagState


class PreviewError(Exception):
    """The service could not preview the draft; the message is shown to the editor."""


def preview_draft(page, conf: AutotagSettings) -> dict:
    draft = page.get_latest_revision_as_object()
    article = page_article(draft, page.latest_revision_id, conf)
    try:
        answer = client.post(conf, "/v1/tag", {"article": article})
    except client.ServiceUnavailable as exc:
        raise PreviewError(f"The tagging service is unreachable ({exc}). Try again shortly.") from exc
    if answer.status == 429:
        wait = f" in {answer.retry_after:g} s" if answer.retry_after else " shortly"
        raise PreviewError(f"The tagging service is busy with other previews. Try again{wait}.")
    if answer.status != 200:
        raise PreviewError(f"The tagging service answered {answer.status}: {answer.error}")
    PageTagState.objects.update_or_create(page=page, defaults={
        "preview": answer.body, "preview_revision": page.latest_revision_id, "preview_at": timezone.now()})
    return answer.body
