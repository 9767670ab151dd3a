"""Smoke test of the browser stack: Voila serves, Chromium renders widgets, clicks reach the kernel.

If these fail, every dashboard test would fail for a reason that has nothing to do with the
dashboard; the timings printed (``-s``) show what an analyst waits for.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

CLICK_CELL = """\
import ipywidgets as w
status = w.Label("not clicked")
button = w.Button(description="Click me")
button.on_click(lambda _: setattr(status, "value", "clicked"))
w.HBox([button, status])
"""

HOME_CELL = """\
import os
w.Label("home: " + os.environ["WORKBENCH_HOME"])
"""


def test_widgets_render_and_clicks_reach_the_kernel(page, voila_server, screenshot):
    url = voila_server.add_notebook("smoke.ipynb", CLICK_CELL, HOME_CELL)
    started = time.monotonic()
    page.goto(url)
    button = page.get_by_role("button", name="Click me")
    expect(button).to_be_visible()
    interactive = time.monotonic() - started
    status = page.locator(".widget-hbox .widget-label")
    expect(status).to_have_text("not clicked")
    screenshot("1-rendered")

    button.click()  # only the kernel can change the label: this proves the websocket round-trip
    expect(status).to_have_text("clicked")
    expect(page.locator(".widget-label").filter(has_text="home: ")).to_have_text(f"home: {voila_server.home.resolve()}")
    screenshot("2-clicked")
    print(f"server up in {voila_server.started_in:.1f} s; page interactive in {interactive:.1f} s")


def test_landing_page_lists_the_notebooks(page, voila_server, screenshot):
    voila_server.add_notebook("listed.ipynb", "1 + 1")
    page.goto(voila_server.url)
    link = page.get_by_role("link", name="listed.ipynb")
    expect(link).to_have_attribute("href", re.compile(r"^/voila/render/listed\.ipynb"))
    screenshot("landing")


def test_a_failing_cell_shows_no_traceback(page, voila_server, screenshot):
    """Analysts never see tracebacks: Voila replaces them with a generic line (show_tracebacks=False)."""
    page.goto(voila_server.add_notebook("fails.ipynb", 'raise RuntimeError("internal detail")'))
    expect(page.get_by_text("There was an error when executing cell")).to_be_visible()
    screenshot("error")
    body = page.locator("body").inner_text()
    assert "internal detail" not in body and "Traceback" not in body


BBOX_CELL = """\
import json, os
from pathlib import Path
import ipywidgets as w
import numpy as np
from PIL import Image
from jupyter_bbox_widget import BBoxWidget

still = Path(os.environ["WORKBENCH_HOME"]) / "still.png"
Image.fromarray(np.full((600, 800, 3), 200, np.uint8)).save(still)
boxes = BBoxWidget(image=str(still), classes=["face"], hide_buttons=True)
seen = w.Label("none")
boxes.observe(lambda change: setattr(seen, "value", json.dumps(change["new"])), names=["bboxes"])
w.VBox([boxes, seen])
"""


def test_a_box_drawn_with_the_mouse_reaches_python(page, voila_server, screenshot):
    """How an analyst marks a face by hand: jupyter-bbox-widget, drawn on its SVG overlay.

    The widget reports boxes in the image's own pixels, whatever size it is shown at; it first
    sends a 0x0 box on mouse-down, then the final box on mouse-up.
    """
    pytest.importorskip("jupyter_bbox_widget", reason="jupyter-bbox-widget is not installed")
    page.goto(voila_server.add_notebook("bbox.ipynb", BBOX_CELL))
    overlay = page.locator(".jupyter-widgets div.image svg")  # the layer that takes mouse events
    expect(page.locator(".jupyter-widgets div.image img")).to_be_visible()
    box = overlay.bounding_box()
    scale = box["width"] / 800  # shown size / natural size
    page.mouse.move(box["x"] + 200 * scale, box["y"] + 100 * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + 400 * scale, box["y"] + 350 * scale, steps=10)
    page.mouse.up()
    expect(page.locator(".widget-label")).to_have_text('[{"x": 200, "y": 100, "width": 200, "height": 250, "label": "face"}]')
    screenshot("drawn")
