"""A small Wagtail site for the demo (`autotag-wagtail-demo`) and the plugin's tests: an
ArticlePage with a StreamField body, a taggit field, and the autotag panel."""
