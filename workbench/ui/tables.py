"""Plain HTML tables for the page (rows of text, every cell escaped, long tables cut with a
note) and counts written as people write them (:func:`plural`).

An HTML widget is used rather than a pandas Styler or a data-grid widget: it needs no extra
front-end extension in Voila, renders the same in every browser, and browser tests can find
its cells by text.

CSS classes: the caller's class on the ``<table>``, ``wb-table`` on every table (styled by the
shared style sheet of :mod:`.layout`), ``wb-table-more`` on the note that says how many rows were
left out.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence


def plural(count: int, word: str, many: str | None = None) -> str:
    """``plural(1, "search", "searches")`` -> ``"1 search"``; ``plural(2, "case")`` -> ``"2 cases"``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def html_table(
    rows: Iterable[Mapping | Sequence],
    columns: Sequence[str] | Mapping[str, str],
    *,
    css_class: str = "",
    max_rows: int = 200,
    more_note: str = "",
    show_header: bool = True,
) -> str:
    """An HTML table of ``rows`` (dicts keyed by column, or sequences in column order).

    Args:
        columns: the column keys, or ``{key: heading shown}``.
        max_rows: rows shown; the rest are counted in a note (``more_note`` says where they are).
        show_header: False for a table of labels and values that needs no headings.
    """
    headings = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    keys = list(headings)
    body, total = [], 0
    for row in rows:
        total += 1
        if total > max_rows:
            continue
        values = [row.get(k) for k in keys] if isinstance(row, Mapping) else list(row)
        body.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in values) + "</tr>")
    head = "" if not show_header else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headings.values()) + "</tr>"
    table = f'<table class="wb-table {html.escape(css_class)}">{head}{"".join(body)}</table>'
    if total > max_rows:
        table += f'<div class="wb-table-more" style="color:#555">{total - max_rows} more rows not shown. {html.escape(more_note)}</div>'
    return table


def key_value_table(pairs: Iterable[tuple[str, object]], *, css_class: str = "") -> str:
    """A two-column table of (label, value) pairs, for figures and settings."""
    return html_table(pairs, ["label", "value"], css_class=css_class, show_header=False)
