"""autotag: topic and country tags for news articles, trained, explained and delivered."""

__version__ = "0.1.0"
