"""Draw a face by hand: a skin over ``Workspace.probe_from_box``.

When the detector missed a face (too small, turned, half hidden) or boxed it badly, the analyst
chooses a frame of the footage (or the still), draws a box round the face and adds it as a
probe marked "manual": the record and the report say a person drew it.

Two ways to give the box, so it works with and without a mouse:

* draw it on the picture (``jupyter_bbox_widget.BBoxWidget``; the picture is a JPEG of the frame
  at most :data:`DRAW_PX` wide, and the box is converted back to pixels of the frame);
* type it: left, top, right, bottom in pixels of the frame (filled in from a drawn box).

The frames offered are the frames the extraction analysed (with or without a face found).

CSS classes: ``wb-manual-panel`` (the section), ``wb-frame-slider``, ``wb-frame-label``,
``wb-draw-box`` (the drawing area; ``wb-frame-image`` when drawing is unavailable), ``wb-box-x1``,
``wb-box-y1``, ``wb-box-x2``, ``wb-box-y2`` (the typed box), ``wb-add-manual`` ("Add manual
face"), ``wb-manual-card`` (a face drawn by hand), ``wb-manual-select`` (its tick box).
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np

from ..errors import WorkbenchError
from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .footage_panel import LoadedFootage
from .layout import badge, caption, card, card_grid, hint, section, set_disabled
from .pictures import THUMB_PX, jpeg_bytes, picture

if TYPE_CHECKING:
    from ..footage import FootageResult
    from ..types import Probe

log = logging.getLogger("workbench.ui")

#: long side of the picture drawn on, pixels (enough to box a face; small enough to send fast).
DRAW_PX = 640


def frames_of(footage: FootageResult) -> list[tuple[int, float]]:
    """The frames a box can be drawn on: every analysed frame, in time order.

    Footage extracted before the library listed its sampled frames falls back to the frames
    that hold a track's face.
    """
    if footage.sampled_frames:
        return list(footage.sampled_frames)
    return sorted({(f.frame_index, f.timestamp_s) for t in footage.tracks for f in t.faces})


def drawn_box_in_frame(box: dict, scale: float, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A BBoxWidget box ``{x, y, width, height}`` (pixels of the picture shown) as (x1, y1, x2, y2)
    in pixels of the frame: times ``scale`` (frame pixels per picture pixel), kept inside the frame."""
    width, height = frame_size
    x1, y1 = box["x"] * scale, box["y"] * scale
    x2, y2 = (box["x"] + box["width"]) * scale, (box["y"] + box["height"]) * scale
    return round(max(0.0, x1)), round(max(0.0, y1)), round(min(float(width), x2)), round(min(float(height), y2))


def is_single_still(footage: FootageResult) -> bool:
    """A still image, not a video or a folder of stills: it has no frame number and no time."""
    return footage.info.kind.value == "image"  # SourceKind.IMAGE by value: no import of the video reader here


def _drawing_widget():
    """A BBoxWidget to draw on, or None when jupyter-bbox-widget is not installed."""
    try:
        from jupyter_bbox_widget import BBoxWidget
    except ImportError:  # the typed box still works
        log.warning("jupyter-bbox-widget is not installed: faces can be boxed by typing the box only")
        return None
    return BBoxWidget(classes=["face"], hide_buttons=True, layout=widgets.Layout(width=f"{DRAW_PX}px"))


class ManualBoxPanel:
    """Choose a frame, box a face on it, and keep it as a manual probe.

    Attributes:
        frames: (frame_index, timestamp_s) of the frames offered.
        frame_slider: which of ``frames`` is shown (hidden for a still).
        frame_label: where that frame is in the footage.
        drawer: the BBoxWidget drawn on (None when unavailable; then ``frame_image`` shows the frame).
        x1, y1, x2, y2: the box in pixels of the frame.
        add_button: "Add manual face".
        probes: the faces added by hand, in order; ``cards`` their cards (with ``select`` tick boxes).
        footage: the footage drawn on, or None.
        runner: the task runner (tests ``.wait()`` on it).
        widget: the section to display.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.footage: FootageResult | None = None
        self.label = ""
        self.frames: list[tuple[int, float]] = []
        self.probes: list[Probe] = []
        self.cards: list[tuple[Probe, widgets.Checkbox]] = []
        self._frame_size = (0, 0)  # width, height of the frame shown, pixels
        self._picture_scale = 1.0  # frame pixels per pixel of the picture drawn on
        self._quiet = False  # True while the page itself moves the slider
        self.shown_position = 0  # which of ``frames`` is on screen

        self.frame_slider = widgets.IntSlider(
            value=0, min=0, max=0, description="Frame", continuous_update=False, readout=False, layout=widgets.Layout(width="460px")
        )
        self.frame_slider.add_class("wb-frame-slider")
        self.frame_label = widgets.Label("Load footage first.")
        self.frame_label.add_class("wb-frame-label")
        self.drawer = _drawing_widget()
        self.frame_image = widgets.Image(format="jpeg", layout=widgets.Layout(max_width=f"{DRAW_PX}px"))
        if self.drawer is not None:
            self.drawer.add_class("wb-draw-box")
            self.drawer.layout.display = "none"  # no broken picture before there is a frame to draw on
            self.drawer.observe(status.guard("Reading the box drawn")(self._drawn), names="bboxes")
            picture_area = self.drawer
        else:
            self.frame_image.add_class("wb-frame-image")
            picture_area = self.frame_image
        style = {"description_width": "80px"}
        self.x1 = widgets.IntText(description="Left (x1)", layout=widgets.Layout(width="170px"), style=style)
        self.y1 = widgets.IntText(description="Top (y1)", layout=widgets.Layout(width="170px"), style=style)
        self.x2 = widgets.IntText(description="Right (x2)", layout=widgets.Layout(width="170px"), style=style)
        self.y2 = widgets.IntText(description="Bottom (y2)", layout=widgets.Layout(width="170px"), style=style)
        for name in ("x1", "y1", "x2", "y2"):
            getattr(self, name).add_class(f"wb-box-{name}")
        self.size_hint = hint("Pixels of the frame, counted from its top-left corner.")
        self.add_button = widgets.Button(
            description="Add manual face", button_style="primary", tooltip="keep the boxed face as a probe marked 'drawn by hand'"
        )
        self.add_button.add_class("wb-add-manual")
        self.cards_grid = card_grid([])

        self.frame_slider.observe(status.guard("Showing the frame")(self._slider_moved), names="value")
        self.add_button.on_click(status.guard("Adding the manual face")(self._add_clicked))

        self.widget = section(
            "4. Draw a face by hand (optional)",
            [
                hint(
                    "For a face the detector missed, or boxed badly: choose the frame, drag a box round the face on the picture "
                    "(or type the box), then click 'Add manual face'. Box the face from the brows to the chin and ear to ear: "
                    "a loose or shifted box matches less well, and a detected face is the better probe when there is one."
                ),
                widgets.HBox([self.frame_slider, self.frame_label], layout=widgets.Layout(align_items="center")),
                picture_area,
                widgets.HBox([self.x1, self.y1, self.x2, self.y2]),
                self.size_hint,
                widgets.HBox([self.add_button]),
                self.cards_grid,
            ],
            "wb-manual-panel",
        )
        self.set_enabled(False)

    # -- what others use ------------------------------------------------------------------------

    @property
    def controls(self) -> list[widgets.Widget]:
        return [self.frame_slider, self.x1, self.y1, self.x2, self.y2, self.add_button] + [box for _, box in self.cards]

    def set_enabled(self, enabled: bool) -> None:
        """Enable drawing (only once footage is loaded: there is nothing to draw on before)."""
        enabled = enabled and self.footage is not None
        set_disabled(self.controls, not enabled)
        if self.drawer is not None:
            self.drawer.view_only = not enabled

    def selected_probes(self) -> list[Probe]:
        """The faces drawn by hand that are ticked for search."""
        return [probe for probe, box in self.cards if box.value]

    # -- frames ---------------------------------------------------------------------------------

    def set_footage(self, loaded: LoadedFootage) -> None:
        """Offer the frames of newly loaded footage and show the first (in the runner's thread)."""
        footage = loaded.footage
        self.footage, self.label = footage, loaded.label
        self.frames = frames_of(footage)
        self.shown_position, self._frame_size = 0, (0, 0)
        still = is_single_still(footage)
        self._quiet = True
        try:
            self.frame_slider.max = max(0, len(self.frames) - 1)
            self.frame_slider.value = 0
        finally:
            self._quiet = False
        self.frame_slider.layout.display = "none" if still or len(self.frames) <= 1 else None
        if self.frames:
            self.show_frame(0)
        else:
            self.frame_label.value = "No frame could be read."

    def _slider_moved(self, change) -> None:
        if not self._quiet and self.footage is not None:
            position = change["new"]
            self.runner.run(
                "Showing the frame",
                lambda progress, cancel: self.show_frame(position),
                lambda _: self.status.info(f"Showing {self.frame_label.value}: box a face on it."),
                disable=[self.add_button],
                cancellable=False,
            )

    def show_frame(self, position: int) -> None:
        """Decode frame ``frames[position]`` and show it to draw on (runs in the runner's thread)."""
        frame_index, timestamp_s = self.frames[position]
        rgb = self.footage.frame(frame_index, timestamp_s)
        self._show_picture(rgb)
        self.shown_position = position
        if is_single_still(self.footage):
            self.frame_label.value = f"the still {self.label}"
        else:
            self.frame_label.value = f"frame {frame_index} at {timestamp_s:.2f} s ({position + 1} of {len(self.frames)} checked)"

    def _show_picture(self, rgb: np.ndarray) -> None:
        from PIL import Image

        data = jpeg_bytes(rgb, DRAW_PX)
        shown_width = Image.open(io.BytesIO(data)).size[0]  # the header only
        height, width = rgb.shape[:2]
        self._frame_size = (width, height)
        self._picture_scale = width / shown_width
        self.size_hint.value = (
            f'<span class="wb-hint">Pixels of the frame ({width} &times; {height}), counted from its top-left corner.</span>'
        )
        if self.drawer is not None:
            self.drawer.bboxes = []
            self.drawer.image = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
            self.drawer.layout.display = None
        else:
            self.frame_image.value = data

    def _drawn(self, change) -> None:
        boxes = change["new"]
        if not boxes:
            return
        box = boxes[-1] if self.drawer.selected_index < 0 or self.drawer.selected_index >= len(boxes) else boxes[self.drawer.selected_index]
        self.x1.value, self.y1.value, self.x2.value, self.y2.value = drawn_box_in_frame(box, self._picture_scale, self._frame_size)

    # -- adding the face ------------------------------------------------------------------------

    def typed_box(self) -> tuple[int, int, int, int]:
        """The box in the fields, checked against the frame; a plain error when it is not a box."""
        x1, y1, x2, y2 = self.x1.value, self.y1.value, self.x2.value, self.y2.value
        width, height = self._frame_size
        if x2 <= x1 or y2 <= y1:
            raise WorkbenchError(f"the box ({x1}, {y1}, {x2}, {y2}) is empty: right must be more than left and bottom more than top")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise WorkbenchError(f"the box ({x1}, {y1}, {x2}, {y2}) goes outside the frame, which is {width} x {height} pixels")
        return x1, y1, x2, y2

    def _add_clicked(self, _button=None) -> None:
        if self.footage is None or not self.frames:
            raise WorkbenchError("load footage first, then box a face on one of its frames")
        self.add(self.typed_box())

    def add(self, box: tuple[int, int, int, int]) -> bool:
        """Make a probe from ``box`` (pixels of the frame shown) in the background."""
        footage = self.footage
        frame_index, timestamp_s = self.frames[self.shown_position]  # the frame on screen, whatever the slider says

        def work(progress, cancel) -> Probe:
            if is_single_still(footage):  # the still itself: no frame, no time
                return self.ws.probe_from_box(Path(footage.info.path), box)
            return self.ws.probe_from_box(footage, box, frame_index=frame_index, timestamp_s=timestamp_s)

        return self.runner.run("Adding the manual face", work, self._added, disable=self.controls, cancellable=False)

    def _added(self, probe: Probe) -> None:
        if any(p.probe_id == probe.probe_id for p in self.probes):
            self.status.warning("That box is already in the list of faces drawn by hand.")
            return
        self.probes.append(probe)
        select = widgets.Checkbox(value=True, description="Search this face", indent=False, layout=widgets.Layout(width="auto"))
        select.add_class("wb-manual-select")
        where = f"at {probe.timestamp_s:.2f} s" if probe.timestamp_s is not None else "on the still"
        widget = card(
            [picture(probe.crop_png, THUMB_PX), caption([badge("drawn by hand", "manual"), html.escape(self.label), where]), select],
            "wb-manual-card",
        )
        self.cards.append((probe, select))
        self.cards_grid.children = [*self.cards_grid.children, widget]
        self.status.success(f"Added a face drawn by hand ({where}); it is ticked for search in part 5.")
