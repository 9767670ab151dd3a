"""Two faces side by side for a reviewer: the probe and a candidate's custody face, zoomable.

Each picture is sent once, as a JPEG of at most :data:`ZOOM_MAX_PX` on its long side (tens of
KB); the zoom slider only changes the width the browser draws both at, so zooming costs no
round trip to the kernel and both faces always show at the same size. A probe cut from CCTV is
often smaller than that: the browser enlarges it, which is what a reviewer zooming in expects
(nothing is invented: the pixels are the crop's own, only drawn bigger).

CSS classes: ``wb-compare`` (the whole view), ``wb-probe-picture`` and ``wb-custody-picture`` (the
two Image widgets), ``wb-no-image`` (shown instead of a picture that is gone), ``wb-zoom`` (the
size slider), ``wb-compare-caption`` (the text under each picture).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from .pictures import LARGE_PX, decode, jpeg_bytes

#: long side of the pictures sent to the page, pixels (the largest zoom shows them 1:1).
ZOOM_MAX_PX = 720
#: smallest width the zoom slider offers, pixels.
ZOOM_MIN_PX = 160


class _Pane:
    """One picture with its caption; a grey box saying why while there is no picture."""

    def __init__(self, css_class: str, title: str):
        self.image = widgets.Image(format="jpeg", layout=widgets.Layout(width=f"{LARGE_PX}px", height="auto", object_fit="contain"))
        self.image.add_class(css_class)
        self.missing = widgets.HTML()
        self.title = widgets.HTML(f"<b>{html.escape(title)}</b>")
        self.caption = widgets.HTML()
        self.caption.add_class("wb-compare-caption")
        # The column is as wide as its picture: a long caption wraps instead of pushing the other
        # picture away.
        self.widget = widgets.VBox(
            [self.title, self.image, self.missing, self.caption], layout=widgets.Layout(margin="0 16px 0 0", width=f"{LARGE_PX}px")
        )
        self.width_px = LARGE_PX
        self._missing_text: str | None = None
        self.clear()

    def show(self, rgb: np.ndarray | None, caption: str, *, missing: str = "no image") -> None:
        self.caption.value = caption
        if rgb is None:
            self.image.layout.display = "none"
            self.image.value = b""
            self._missing_text = missing
        else:
            self.image.value = jpeg_bytes(rgb, ZOOM_MAX_PX, quality=90)
            self.image.layout.display = None
            self._missing_text = None
        self._render_missing()

    def clear(self) -> None:
        self.show(None, "", missing="nothing selected")

    def set_width(self, width_px: int) -> None:
        self.width_px = int(width_px)
        self.image.layout.width = f"{self.width_px}px"
        self.widget.layout.width = f"{self.width_px}px"
        self._render_missing()

    def _render_missing(self) -> None:
        if self._missing_text is None:
            self.missing.value = ""
            return
        side = min(self.width_px, LARGE_PX)  # a placeholder need not grow with the zoom
        self.missing.value = (
            f'<div class="wb-no-image" style="width:{side}px;height:{side}px;display:flex;align-items:center;'
            f'justify-content:center;text-align:center;background:#eee;color:#666;border:1px solid #ccc">'
            f"{html.escape(self._missing_text)}</div>"
        )


class SideBySide:
    """The probe (left) and the candidate's custody face (right) at one adjustable size.

    Attributes:
        probe_image, custody_image: the two Image widgets (JPEG bytes in ``.value``).
        probe_caption, custody_caption: HTML widgets under them.
        zoom: IntSlider, the width both pictures are drawn at, pixels.
        widget: the whole view.
    """

    def __init__(self, *, probe_title: str = "Probe (from the case)", custody_title: str = "Custody photo (gallery)"):
        self._probe = _Pane("wb-probe-picture", probe_title)
        self._custody = _Pane("wb-custody-picture", custody_title)
        self.probe_image, self.custody_image = self._probe.image, self._custody.image
        self.probe_caption, self.custody_caption = self._probe.caption, self._custody.caption
        self.zoom = widgets.IntSlider(
            value=LARGE_PX, min=ZOOM_MIN_PX, max=ZOOM_MAX_PX, step=40, description="Picture size",
            continuous_update=True, readout_format="d", style={"description_width": "initial"},
            layout=widgets.Layout(width="420px"),
        )  # fmt: skip
        self.zoom.add_class("wb-zoom")
        self.zoom.observe(lambda change: self.set_width(change["new"]), names="value")
        unit = widgets.Label("pixels wide (both pictures)")
        self.widget = widgets.VBox([widgets.HBox([self.zoom, unit]), widgets.HBox([self._probe.widget, self._custody.widget])])
        self.widget.add_class("wb-compare")

    def show(
        self,
        probe: np.ndarray | bytes | None,
        custody: np.ndarray | None,
        *,
        probe_caption: str = "",
        custody_caption: str = "",
    ) -> None:
        """Show both faces: ``probe`` as RGB or PNG/JPEG bytes (a probe's ``crop_png``), ``custody`` as RGB.

        A missing picture (a probe without a crop, a custody record removed since the search)
        shows as a grey box saying so.
        """
        if isinstance(probe, bytes | bytearray):
            probe = decode(bytes(probe))
        self._probe.show(probe, probe_caption, missing="no probe picture recorded")
        self._custody.show(custody, custody_caption, missing="custody image no longer in the gallery")

    def clear(self) -> None:
        self._probe.clear()
        self._custody.clear()

    def set_width(self, width_px: int) -> None:
        """Draw both pictures ``width_px`` wide (their height follows)."""
        self._probe.set_width(width_px)
        self._custody.set_width(width_px)
