"""The demo's news article: title, standfirst, a StreamField body, the site's own taggit tags."""

from django.db import models
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey
from taggit.models import TaggedItemBase
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page

from wagtail_autotag.panels import AutotagPanel


class ArticlePageTag(TaggedItemBase):
    content_object = ParentalKey("autotag_demo.ArticlePage", related_name="tagged_items", on_delete=models.CASCADE)


class ArticlePage(Page):
    intro = models.CharField(max_length=500, blank=True)
    body = StreamField([("heading", blocks.CharBlock(form_classname="title")), ("paragraph", blocks.RichTextBlock())], blank=True)
    tags = ClusterTaggableManager(through=ArticlePageTag, blank=True)

    content_panels = Page.content_panels + [FieldPanel("intro"), FieldPanel("body"), FieldPanel("tags"), AutotagPanel()]
    template = "autotag_demo/article_page.html"
