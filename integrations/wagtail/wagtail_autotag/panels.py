"""AutotagPanel: the page editor's panel listing the page's tags, with review buttons.

Add it to a page model's panels, e.g. `content_panels = Page.content_panels + [FieldPanel("body"), AutotagPanel()]`.
"""

from __future__ import annotations

from django.forms import Media
from wagtail.admin.panels import Panel

from .conf import get_settings
from .panel_context import panel_context


class AutotagPanel(Panel):
    def __init__(self, heading="Tags (autotag)", **kwargs):
        super().__init__(heading=heading, **kwargs)

    @property
    def clean_name(self):
        return super().clean_name or "autotag"

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_autotag/panel.html"

        @property
        def media(self):
            return Media(css={"all": ["wagtail_autotag/panel.css"]}, js=["wagtail_autotag/panel.js"])

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            context.update(panel_context(self.instance, get_settings()))
            return context
