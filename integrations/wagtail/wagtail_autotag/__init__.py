"""wagtail-autotag: the Wagtail side of autotag (outbox, signed callbacks, editor review panel)."""

__version__ = "0.1.0"
