"""Small layout pieces the analyst's components share: section boxes, cards, badges, the page's CSS.

Why here: every component draws cards and badges the same way, and the page's light style sheet
(one ``<style>`` element) lives in one place. Colours and sizes are in CSS pixels.

CSS classes set here: ``wb-section`` (a numbered part of the page), ``wb-card`` (a track, a
probe or a candidate), ``wb-badge`` with ``wb-badge-<kind>`` (``good``, ``warn``, ``manual``,
``info``), ``wb-hint`` (grey help text), ``wb-feedback`` (the status line and progress bar; in Voila kept
in view at the bottom of the window while scrolling).
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import ipywidgets as widgets

#: width of a card in a grid, CSS pixels (a THUMB_PX thumbnail plus padding).
CARD_PX = 150

_CSS = """
<style>
/* the box widget's class list: one class ("face"), nothing to choose */
.wb-app .wb-draw-box .class-label, .wb-app .wb-draw-box .classes {display:none}
.wb-app { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1200px; }
.wb-app .wb-section { border: 1px solid #d8dde3; border-radius: 8px; padding: 8px 12px; margin: 6px 0; background: #fbfcfd; }
.wb-app .wb-section h3 { margin: 2px 0 6px 0; font-size: 1.05em; color: #22313f; }
.wb-app .wb-card { border: 1px solid #cfd6dd; border-radius: 6px; padding: 4px; background: #fff; }
.wb-app .wb-card.wb-low-quality { border: 2px dashed #d9822b; background: #fff8f0; }
.wb-app .wb-card.wb-selected-card { outline: 3px solid #2b6cb0; }
.wb-app .wb-badge { display: inline-block; border-radius: 3px; padding: 0 5px; margin: 1px 2px 1px 0; font-size: 0.85em; }
.wb-app .wb-badge-good { background: #e3f4e8; color: #1d5b2e; border: 1px solid #9fd3ac; }
.wb-app .wb-badge-warn { background: #fff0dd; color: #7a4a00; border: 1px solid #e6b56b; }
.wb-app .wb-badge-manual { background: #efe8fb; color: #4b2a85; border: 1px solid #b9a3e3; }
.wb-app .wb-badge-info { background: #eaf2fb; color: #1a3d5c; border: 1px solid #9cc3e6; }
.wb-app .wb-hint { color: #5f6b76; font-size: 0.9em; }
/* In Voila the status line and progress bar stay in view at the bottom of the window, wherever the
   analyst has scrolled to. Sticky positioning cannot work inside the widgets' boxes (they clip), and
   Voila's scrolling panel has "contain: strict", which would pin a fixed bar to the page instead of
   the window: lifted for the panel holding this page only. */
body[data-voila] .lm-BoxPanel-child:has(.wb-app) { contain: none !important; }
body[data-voila] .wb-app { padding-bottom: 96px !important; }
body[data-voila] .wb-app .wb-feedback {
  position: fixed; bottom: 0; left: 24px; width: min(1180px, calc(100vw - 48px)); z-index: 1000;
  background: #ffffff; border-top: 1px solid #cfd6dd; box-shadow: 0 -2px 8px rgba(0, 0, 0, 0.08); padding: 2px 10px;
}
.wb-app .wb-searches, .wb-app .wb-decisions { max-height: 320px; overflow: auto; }
.wb-app table.wb-table { border-collapse: collapse; font-size: 0.9em; }
.wb-app table.wb-table th, .wb-app table.wb-table td { border: 1px solid #d8dde3; padding: 2px 6px; text-align: left; vertical-align: top; }
.wb-app table.wb-table th { background: #eef1f4; }
</style>
"""


def style_sheet() -> widgets.HTML:
    """The page's light style sheet (a fresh widget per page)."""
    return widgets.HTML(_CSS)


def section(title: str, children: Iterable[widgets.Widget], css: str) -> widgets.VBox:
    """A titled part of the page; ``css`` names it for browser tests (``wb-...``)."""
    box = widgets.VBox([widgets.HTML(f"<h3>{html.escape(title)}</h3>"), *children])
    box.add_class("wb-section")
    box.add_class(css)
    return box


def card(children: Iterable[widgets.Widget], css: str, *, width_px: int = CARD_PX) -> widgets.VBox:
    """A bordered card of fixed width holding a picture and its captions."""
    box = widgets.VBox(list(children), layout=widgets.Layout(width=f"{width_px}px", align_items="center"))
    box.add_class("wb-card")
    box.add_class(css)
    return box


def card_grid(cards: Iterable[widgets.Widget], *, width_px: int = CARD_PX) -> widgets.GridBox:
    """Cards in as many columns as fit the page."""
    return widgets.GridBox(
        list(cards), layout=widgets.Layout(grid_template_columns=f"repeat(auto-fill, {width_px + 8}px)", grid_gap="6px", width="100%")
    )


def badge(text: str, kind: str = "info") -> str:
    """HTML of a small coloured label (``kind``: good, warn, manual or info)."""
    return f'<span class="wb-badge wb-badge-{kind}">{html.escape(text)}</span>'


def plural(count: int, word: str) -> str:
    """``"1 face"``, ``"2 faces"``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def hint(text: str) -> widgets.HTML:
    """Grey help text under a control, in plain words."""
    return widgets.HTML(f'<span class="wb-hint">{html.escape(text)}</span>')


def caption(lines: Iterable[str]) -> widgets.HTML:
    """Lines of already-escaped HTML under a picture, centred."""
    return widgets.HTML('<div style="text-align:center;line-height:1.3;overflow-wrap:anywhere">' + "<br>".join(lines) + "</div>")


def set_disabled(controls: Iterable[widgets.Widget], disabled: bool) -> None:
    """Disable or enable every control that can be disabled."""
    for control in controls:
        if hasattr(control, "disabled"):
            control.disabled = disabled


def discard(old: Iterable[widgets.Widget]) -> None:
    """Close widgets no longer shown, with their children, so the kernel and the page free them.

    Call it after the container shows the new children (a closed widget cannot be displayed).
    """
    for widget in old:
        discard(getattr(widget, "children", ()))
        widget.close()
