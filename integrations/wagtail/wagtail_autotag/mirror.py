"""The optional taggit mirror: the page's applied tags copied into the site's own taggit field
(`AUTOTAG['TAGGIT_MIRROR'] = {"news.ArticlePage": "tags"}`).

Written straight to the live page's tag relation (the through model), never through
save_revision or publish, so it cannot start a publish loop. A publish resets the live tags to
the revision's, so the mirror is synced again after every publish. Tags the site set itself are
left alone: only names this plugin put there are ever removed.
"""

from __future__ import annotations

from .conf import AutotagSettings
from .models import REGION, PageTag, PageTagState


def mirrored_names(page) -> list[str]:
    rows = PageTag.objects.filter(page_id=page.pk, status=PageTag.APPLIED).order_by("kind", "tag")
    return [row.name or row.tag if row.kind == REGION else row.tag for row in rows]


def sync_mirror(page, conf: AutotagSettings) -> None:
    field_name = conf.taggit_mirror.get(type(page)._meta.label)
    if not field_name:
        return
    manager = getattr(type(page), field_name)
    through = manager.through
    tag_model = through.tag_model()
    state, _ = PageTagState.objects.get_or_create(page_id=page.pk)
    wanted = set(mirrored_names(page))
    current = set(through.objects.filter(content_object_id=page.pk).values_list("tag__name", flat=True))
    previously_ours = set(state.mirrored)
    for name in (previously_ours - wanted) & current:
        through.objects.filter(content_object_id=page.pk, tag__name=name).delete()
    for name in wanted - current:
        tag = tag_model.objects.filter(name=name).first() or tag_model.objects.create(name=name)
        through.objects.create(content_object_id=page.pk, tag=tag)
    # ours: what we added now or earlier and is still there; a name the site had set itself stays the site's
    state.mirrored = sorted((previously_ours & wanted) | (wanted - current))
    state.save(update_fields=["mirrored"])
