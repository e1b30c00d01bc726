"""HTML rendering of token sequences coloured by the signals that selected each token.

Shared by the demo's report (reference traces, with ground-truth labels underlined) and
``videoktr analyze --html`` (completions from rollout dumps). Every function returns a string;
writing files is the caller's business.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from ..core.signals import SIGNALS

SIGNAL_COLOURS = {"visual": "#4e79a7", "temporal": "#f28e2b", "entropy": "#59a14f"}
# A signal outside the three (a user's own) still gets a colour rather than a KeyError.
OTHER_SIGNAL_COLOUR = "#b07aa1"
# Ground-truth labels of the synthetic world are drawn as underlines, so they do not hide the
# selection colours.
LABEL_UNDERLINES = {"visual": "border-bottom:2px solid #222", "temporal": "border-bottom:2px dashed #222"}

PAGE_STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
.tok{padding:1px 0;border-radius:2px;white-space:pre-wrap}.ex{margin:1em 0;padding:.6em;border:1px solid #ddd;border-radius:6px}
.meta{font-size:.85em;color:#666;margin-bottom:.3em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"""


def ordered_signals(names) -> list[str]:
    """The given signal names, the three built-in ones first in their usual order, others sorted."""
    names = set(names)
    return [s for s in SIGNALS if s in names] + sorted(names - set(SIGNALS))


def signal_colour(signal: str) -> str:
    return SIGNAL_COLOURS.get(signal, OTHER_SIGNAL_COLOUR)


def token_display_text(token: str) -> str:
    """A byte-level BPE token as HTML text: ``Ġ`` (the space byte) shown as a space, ``Ċ`` (the
    newline byte) as a newline, everything else escaped."""
    return html.escape(token.replace("Ġ", " ").replace("Ċ", "\n"))


def render_token_spans(
    tokens: Sequence[str],
    selected: Mapping[str, Sequence[bool]],
    scores: Mapping[str, Sequence[float]],
    labels: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
) -> str:
    """One ``<span class="tok">`` per token.

    The background is the colour of the signal that selected the token, a vertical gradient
    when several did, none when no signal did. Hovering shows each signal's score, then the
    token's training weight (``weights``, when given) and its ground-truth label (``labels``,
    when given; a ``visual`` label is underlined solid, ``temporal`` dashed).
    """
    selecting = ordered_signals(selected)
    scored = ordered_signals(scores)
    spans = []
    for i, token in enumerate(tokens):
        chosen = [s for s in selecting if selected[s][i]]
        colours = [signal_colour(s) for s in chosen]
        background = (
            f"linear-gradient({', '.join(colours + colours[-1:])})" if len(colours) > 1
            else (colours[0] if colours else "transparent")
        )
        title = "; ".join(f"{s} {_format_score(scores[s][i])}" for s in scored)
        if weights is not None:
            title += f"; weight {weights[i]:.3f}"
        underline = ""
        if labels is not None:
            underline = LABEL_UNDERLINES.get(labels[i], "")
            title += f"; label {labels[i]}"
        style = f"background:{background};{underline};color:{'#fff' if chosen else '#222'}"
        text = token_display_text(token)
        spans.append(f'<span class="tok" style="{style}" title="{html.escape(title)}">{text}</span>')
    return "".join(spans)


def _format_score(value: float | None) -> str:
    # A dump may hold null or NaN where a signal is unavailable (an image has no temporal score).
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}"


def signal_legend(signals: Sequence[str] = SIGNALS) -> str:
    """One coloured chip per signal, for the sentence that explains the colours."""
    return " ".join(f"<span class='tok' style='background:{signal_colour(s)};color:#fff'>{s}</span>" for s in signals)


def example_block(meta_html: str, spans_html: str) -> str:
    """A bordered box: a grey line of metadata over the coloured token sequence."""
    return f"<div class='ex'><div class='meta'>{meta_html}</div><div class='trace'>{spans_html}</div></div>"


def html_page(title: str, body: str) -> str:
    """A complete HTML document with the reports' shared style around ``body``."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style>
</head><body>{body}</body></html>"""
