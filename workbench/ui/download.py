"""A download link for a file the kernel wrote (a report, an audit export), carried in the page.

Why a ``data:`` link: Voila serves the notebook's outputs, not the kernel's files, so a plain link
to ``reports/OP-7.pdf`` would not resolve in the analyst's browser. The link's ``href`` holds the
file itself (base64), and its ``download`` attribute names it; any browser saves it on click.
Reports and audit exports are small (a case report is a few hundred KB); files above
:data:`MAX_BYTES` are not embedded and the link says where the file is on the server instead.

CSS classes: ``wb-download`` (the widget), ``wb-download-link`` (the ``<a>`` element).
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
from pathlib import Path

import ipywidgets as widgets

#: largest file put into the page, bytes (base64 adds a third; the page holds it in memory).
MAX_BYTES = 25 * 1024 * 1024

_MIME = {".pdf": "application/pdf", ".html": "text/html", ".csv": "text/csv"}


def human_size(n_bytes: int) -> str:
    """``392215`` -> ``"383 KB"`` (binary units, as file managers show them)."""
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    if n_bytes < 1024**2:
        return f"{n_bytes / 1024:.0f} KB"
    return f"{n_bytes / 1024**2:.1f} MB"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class DownloadLink(widgets.HTML):
    """An HTML widget holding one download link (empty until :meth:`show`).

    Attributes:
        path: the file last offered, or None.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_class("wb-download")
        self.path: Path | None = None

    def show(self, path: str | os.PathLike, *, label: str | None = None) -> None:
        """Offer ``path`` for download under its own name."""
        path = Path(path)
        size = path.stat().st_size
        self.path = path
        name = html.escape(path.name, quote=True)
        if size > MAX_BYTES:
            self.value = (
                f'<div class="wb-download-too-large">{html.escape(path.name)} is {human_size(size)}, too large to download '
                f"from the page; it is on the server at <code>{html.escape(str(path))}</code></div>"
            )
            return
        mime = _MIME.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        text = html.escape(label or f"Download {path.name}")
        self.value = (
            f'<a class="wb-download-link" download="{name}" href="{data_uri(path.read_bytes(), mime)}" '
            f'style="display:inline-block;padding:6px 12px;margin:4px 0;border:1px solid #2a6fb0;border-radius:4px;'
            f'background:#eaf2fb;color:#1a3d5c;text-decoration:none">&#x2B07; {text}</a> '
            f'<span style="color:#555">({human_size(size)}; also kept on the server at <code>{html.escape(str(path))}</code>)</span>'
        )

    def clear(self) -> None:
        self.path = None
        self.value = ""
