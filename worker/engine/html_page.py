"""Self-contained HTML report pages: matplotlib figures drawn with Agg and embedded as
data:image/png URIs, text escaped, styles inline, so the file opens anywhere (mailed, archived,
offline) and fetches nothing.
"""

from __future__ import annotations

import base64
import html
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

escape = html.escape

_STYLE = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
p.meta { color: #555; margin-top: 0; } img { max-width: 100%; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 4px 10px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } td:first-child { white-space: nowrap; }
.gain { color: #1a7f37; } .loss { color: #b42318; } .quiet { color: #777; }
"""


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, without pyplot's global state (no display needed)."""
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image(figure: Figure, alt: str) -> str:
    return f'<img src="{png_data_uri(figure)}" alt="{escape(alt)}">'


def table(headers: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    """An HTML table; cells are escaped unless given as Markup."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{_cell(v)}</td>' for i, v in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class Markup(str):
    """Already-escaped HTML, put into a table cell as it is."""


def _cell(value) -> str:
    if isinstance(value, Markup):
        return value
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def page(title: str, meta: str, sections: list[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1><p class=meta>{escape(meta)}</p>"
            + "\n".join(sections) + "</body></html>\n")
