"""manage.py autotag_export: the re-tag export for `autotag retag` (one JSON line per live page)."""

import sys

from django.core.management.base import BaseCommand

from wagtail_autotag.conf import get_settings
from wagtail_autotag.export import write_export


class Command(BaseCommand):
    help = "Write the re-tag export (id, revision, title, body, current_tags) of every live tagged page, for `autotag retag`."

    def add_arguments(self, parser):
        parser.add_argument("--out", default="-", help="file to write (default: standard output)")

    def handle(self, *args, out, **options):
        conf = get_settings()
        if out == "-":
            count = write_export(sys.stdout, conf)
        else:
            with open(out, "w", encoding="utf-8") as handle:
                count = write_export(handle, conf)
        self.stderr.write(f"autotag_export: {count} page(s) written to {out if out != '-' else 'standard output'}")
