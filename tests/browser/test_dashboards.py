"""The analyst's and the reviewer's dashboards, driven in headless Chromium as their users would.

The project's own ``notebooks/`` are served by Voila (``workbench.ui.serve.voila_command``) on a
demo workspace built in this process (``workbench.demo.build_demo_workspace``: a gallery of
package images, case DEMO-1, a CCTV still and a SYNTHETIC clip in which DEMO-T1-4 walks). Two
servers share that workspace, one as ``analyst1`` and one as ``reviewer2``
(``WORKBENCH_USER``): the two-person rule needs two people.

1. analyst1 creates a case, uploads the still and the clip through the upload button, finds the
   faces, opens a track's frames, draws a face by hand with the mouse, searches, compares the
   first candidate and records a first verdict;
2. reviewer2 finds it awaiting review, sees probe and custody face side by side, confirms it and
   downloads the case report (PDF), which names the case, the subject and both people;
3. a text file named ``.mp4`` gets a plain message naming it, and the page keeps working;
4. the landing page lists the dashboards and the technical notebooks.

Every step is saved as a picture under ``tests/browser/artifacts/<test>/``. With
``WORKBENCH_DOCS_SCREENSHOTS=1`` the three that show the dashboards best are also written to
``docs/screenshots/`` (window-sized 1280x800, 256 colours); by default a test run leaves the
committed ones alone.

Test 2 records its own first verdict in-process when test 1 did not (run alone, or failed).
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from workbench import Workspace
from workbench.demo import DEMO_CASE, build_demo_workspace

from .conftest import PROJECT_NOTEBOOKS, running_voila

ANALYST, REVIEWER = "analyst1", "reviewer2"
SUBJECT = "DEMO-T1-4"  # the person walking in the demo clip and seen in the still
CASE_REF = "OP-BROWSER-7"
FIRST_REASON = "ear shape, hairline and the jaw line agree; the probe is small and turned"
SECOND_REASON = "agree: hairline and jaw agree at full size; the probe is poor, so a lead only"
#: where the walker's face is on the clip's first frame, pixels (x1, y1, x2, y2): the detector's
#: box (58, 191, 102, 249) with a little margin, as a person would draw it.
WALKER_BOX = (52, 182, 108, 258)
EXTRACT_TIMEOUT_MS = 120_000  # finding faces under load on 2 cores, model loading included
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DOCS_SWITCH = "WORKBENCH_DOCS_SCREENSHOTS"  # =1: refresh docs/screenshots/ from this run


# -- the workspace and the two servers ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, session_home, engine) -> Path:
    """The demo workspace (owner ``admin``; team mode: everyone holds every role)."""
    home = tmp_path_factory.mktemp("dashboards") / "workspace"
    home.mkdir(mode=0o700)  # it holds custody images: the workspace warns when others can read it
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace.open(home, user="admin", engine=engine) as ws:
        build_demo_workspace(ws)
    return home


@pytest.fixture(scope="module")
def analyst_server(demo_home):
    with running_voila(demo_home, PROJECT_NOTEBOOKS, demo_home.parent / "voila-analyst.log", {"WORKBENCH_USER": ANALYST}) as server:
        yield server


@pytest.fixture(scope="module")
def reviewer_server(demo_home):
    with running_voila(demo_home, PROJECT_NOTEBOOKS, demo_home.parent / "voila-reviewer.log", {"WORKBENCH_USER": REVIEWER}) as server:
        yield server


@pytest.fixture
def still(demo_home) -> Path:
    return demo_home / "demo" / "probes" / "cctv_still.jpg"


@pytest.fixture
def clip(demo_home) -> Path:
    return demo_home / "demo" / "probes" / "demo_clip_SYNTHETIC.mp4"


# -- what every step does ------------------------------------------------------------------------


def upload(page, path: Path) -> None:
    """Choose ``path`` in the file chooser the upload button opens (its input is not in the page)."""
    with page.expect_file_chooser() as chooser:
        page.click(".wb-upload")
    chooser.value.set_files(str(path))


def to_middle(locator) -> None:
    """Scroll ``locator`` to the middle of the window: clear of the status bar fixed at the bottom."""
    locator.evaluate("e => e.scrollIntoView({block: 'center'})")


def to_top(locator) -> None:
    locator.evaluate("e => e.scrollIntoView({block: 'start'})")


def for_docs(page, name: str) -> None:
    """Write the window as docs/screenshots/<name> (when asked), every picture a flat grey: the demo's
    faces come from photos of real people that packages ship, and real faces stay out of the
    repository. 256 colours: a third of the bytes."""
    from PIL import Image

    if os.environ.get(DOCS_SWITCH) != "1":
        return
    DOCS.mkdir(parents=True, exist_ok=True)
    style = page.add_style_tag(content=".wb-app img, .wb-app svg image { filter: contrast(0) !important; }")
    try:
        raw = page.screenshot(full_page=False)
    finally:
        style.evaluate("e => e.remove()")
    with Image.open(io.BytesIO(raw)) as picture:
        reduced = picture.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG)
    reduced.save(DOCS / name, optimize=True)


def open_dashboard(page, url: str, ready: str) -> float:
    """Open a dashboard and wait until ``ready`` is enabled; returns the seconds it took."""
    started = time.monotonic()
    page.goto(url)
    expect(page.locator(ready)).to_be_enabled()
    return time.monotonic() - started


def drag(page, overlay, box: tuple[int, int, int, int], natural_width: int) -> None:
    """Draw ``box`` (pixels of the picture) with the mouse on a BBoxWidget's SVG overlay."""
    to_middle(overlay)
    shown = overlay.bounding_box()
    scale = shown["width"] / natural_width
    x1, y1, x2, y2 = box
    page.mouse.move(shown["x"] + x1 * scale, shown["y"] + y1 * scale)
    page.mouse.down()
    page.mouse.move(shown["x"] + x2 * scale, shown["y"] + y2 * scale, steps=10)
    page.mouse.up()


# -- 1. the analyst ------------------------------------------------------------------------------


def test_analyst_searches_footage_and_records_a_first_verdict(page, analyst_server, still, clip, screenshot):
    waited = open_dashboard(page, analyst_server.render_url("analyst.ipynb"), ".wb-case-ref input")
    status = page.locator(".wb-status")
    expect(page.locator(".wb-header")).to_contain_text(f"signed in as {ANALYST}")
    expect(page.locator(".wb-caveat")).to_contain_text("not identifications")
    expect(page.locator(".wb-upload")).to_be_disabled()  # nothing but the case until a case is open
    screenshot("01-opened")

    # Part 1: a new case.
    page.fill(".wb-case-ref input", CASE_REF)
    page.fill(".wb-case-offence input", "street robbery (browser test)")
    page.fill(".wb-case-purpose textarea", "the robber was filmed by a shop camera; identify leads for the investigation")
    page.click(".wb-new-case")
    expect(status).to_contain_text(f"Case {CASE_REF} is open")
    expect(page.locator(".wb-case-summary")).to_contain_text(f"Case open: {CASE_REF}")
    screenshot("02-case-created")

    # Part 2: the still and the clip through the upload button; the clip is chosen (last upload).
    upload(page, still)
    expect(status).to_contain_text("Kept cctv_still.jpg")
    upload(page, clip)
    expect(status).to_contain_text("Kept demo_clip_SYNTHETIC.mp4")
    choice = page.locator(".wb-footage-choice select")
    expect(choice.locator("option")).to_have_text(["demo_clip_SYNTHETIC.mp4 (uploaded)", "cctv_still.jpg (uploaded)"])
    chosen = choice.evaluate("s => s.options[s.selectedIndex].text").replace("\xa0", " ")  # widgets show spaces as &nbsp;
    assert chosen == "demo_clip_SYNTHETIC.mp4 (uploaded)"
    screenshot("03-uploaded")

    started = time.monotonic()
    page.click(".wb-extract")
    expect(status).to_contain_text("Tick the faces to search", timeout=EXTRACT_TIMEOUT_MS)
    extracted = time.monotonic() - started
    cards = page.locator(".wb-track-card")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 2, "the clip shows two people"  # the walker and a passer-by
    expect(page.locator(".wb-footage-summary")).to_contain_text("demo_clip_SYNTHETIC.mp4 (uploaded)")
    to_top(page.locator(".wb-tracks-panel"))
    screenshot("04-tracks")

    # Part 3: a track's frames; the best track (quality first) is the walker.
    first = cards.first
    first.locator(".wb-track-frames").click()
    expect(page.locator(".wb-track-strip .wb-strip-face").first).to_be_visible()
    expect(status).to_contain_text("faces of track")
    strip = page.locator(".wb-track-strip .wb-strip-face")
    assert 2 <= strip.count() <= 6
    to_middle(page.locator(".wb-track-strip"))
    screenshot("05-track-frames")

    # Part 4: a face drawn by hand with the mouse on the first frame (640x360, shown 640 wide).
    expect(page.locator(".wb-frame-label")).to_contain_text("frame 0 at 0.00 s")
    expect(page.locator(".wb-draw-box img")).to_be_visible()
    drag(page, page.locator(".wb-draw-box svg"), WALKER_BOX, natural_width=640)
    typed = [int(page.locator(f".wb-box-{name} input").input_value()) for name in ("x1", "y1", "x2", "y2")]
    assert all(abs(got - want) <= 2 for got, want in zip(typed, WALKER_BOX)), f"box drawn {WALKER_BOX}, fields say {typed}"
    page.click(".wb-add-manual")
    manual = page.locator(".wb-manual-card")
    expect(manual).to_have_count(1)
    expect(manual).to_contain_text("drawn by hand")
    expect(manual).to_contain_text("at 0.00 s")
    expect(manual.locator(".wb-manual-select input")).to_be_checked()
    expect(status).to_contain_text("Added a face drawn by hand")
    to_top(page.locator(".wb-frame-slider"))  # the frame, the box, its pixels and the new card in one window
    screenshot("06-manual-box", full_page=False)
    for_docs(page, "analyst-manual-box.png")

    # Part 5: search the walker's track and the face drawn by hand, 6 candidates each (one row of cards).
    first.locator(".wb-track-select input").check()
    page.fill(".wb-top input", "6")
    page.press(".wb-top input", "Enter")
    started = time.monotonic()
    page.click(".wb-search")
    expect(status).to_contain_text("recorded:", timeout=EXTRACT_TIMEOUT_MS)
    searched = time.monotonic() - started
    rows = page.locator(".wb-probe-row")
    expect(rows).to_have_count(2)
    by_hand = page.locator(".wb-probe-card", has_text="drawn by hand")
    drawn, tracked = rows.filter(has=by_hand), rows.filter(has_not=by_hand)
    expect(drawn).to_have_count(1)
    for row in (tracked, drawn):
        expect(row.locator(".wb-candidate-card")).to_have_count(6)
        top = row.locator(".wb-candidate-card").first
        expect(top).to_contain_text(f"#1 {SUBJECT}")
        expect(top).to_contain_text("above threshold")
        expect(top).to_have_class(re.compile(r"\bwb-above-threshold\b"))
    expect(page.locator(".wb-search-summary")).to_contain_text(f"in case {CASE_REF}")
    to_top(page.locator(".wb-search"))
    screenshot("07-candidates", full_page=False)
    for_docs(page, "analyst-candidates.png")

    # Part 6: compare the walker's first candidate, and a first verdict with a reason.
    tracked.locator(".wb-candidate-card").first.locator(".wb-candidate-view").click()
    expect(page.locator(".wb-compare-title")).to_contain_text(f"#1 {SUBJECT}")
    expect(page.locator(".wb-compare-probe img")).to_be_visible()
    expect(page.locator(".wb-compare-custody img")).to_be_visible()
    expect(tracked.locator(".wb-candidate-card").first).to_have_class(re.compile(r"\bwb-selected-card\b"))
    to_top(page.locator(".wb-verdict-panel"))
    screenshot("08-compare", full_page=False)

    page.locator(".wb-verdict").get_by_label("Possible match").check()
    page.fill(".wb-verdict-reason textarea", FIRST_REASON)
    page.click(".wb-record-verdict")
    expect(status).to_contain_text(f"Recorded: possible match for {SUBJECT}")
    decisions = page.locator(".wb-decisions")
    for text in (SUBJECT, "possible match", ANALYST, FIRST_REASON, "first"):
        expect(decisions).to_contain_text(text)
    expect(page.locator(".wb-searches")).to_contain_text("(drawn by hand)")
    expect(tracked.locator(".wb-candidate-verdict").first).to_contain_text("your verdict: possible match")
    to_top(page.locator(".wb-record-panel"))
    screenshot("09-verdict-recorded")
    print(f"analyst page usable in {waited:.1f} s; clip extracted in {extracted:.1f} s; search shown in {searched:.1f} s")


# -- 2. the reviewer -----------------------------------------------------------------------------


@pytest.fixture
def awaiting_review(demo_home, engine) -> None:
    """A first verdict by analyst1 on SUBJECT in CASE_REF awaiting review: test 1's, else made here."""
    with Workspace.open(demo_home, user=ANALYST, engine=engine) as ws:
        waiting = [r for r in ws.awaiting_second_review() if r.subject_id == SUBJECT and r.first and r.first.reviewer == ANALYST]
        if not waiting:
            ws.open_case(CASE_REF, offence="street robbery (browser test)", purpose="identify leads for the investigation")
            run = ws.search_files(CASE_REF, [demo_home / "demo" / "probes" / "cctv_still.jpg"])
            ws.first_verdict(run.search_id, SUBJECT, "possible match", FIRST_REASON)


def test_reviewer_confirms_and_downloads_the_report(page, reviewer_server, awaiting_review, screenshot, tmp_path):
    from pypdf import PdfReader

    open_dashboard(page, reviewer_server.render_url("reviewer.ipynb"), ".wb-export-pdf")
    status = page.locator(".wb-status")
    expect(page.locator(".wb-header")).to_contain_text(f"signed in as {REVIEWER}")
    summary = page.locator(".wb-queue-summary")
    expect(summary).to_contain_text("a second review")
    expect(summary).to_contain_text(CASE_REF)
    queue = page.locator(".wb-queue-list select")
    labels = [text.replace("\xa0", " ") for text in queue.locator("option").all_inner_texts()]
    wanted = [i for i, text in enumerate(labels) if SUBJECT in text and f"by {ANALYST}" in text and "possible match" in text]
    assert wanted, f"no line for {SUBJECT} by {ANALYST} in the queue: {labels}"
    screenshot("01-queue")

    queue.select_option(index=wanted[-1])
    details = page.locator(".wb-candidate-details")
    for text in (CASE_REF, SUBJECT, ANALYST, "possible match", FIRST_REASON):
        expect(details).to_contain_text(text)
    expect(page.locator(".wb-own-decision")).to_have_count(0)  # reviewer2 did not make the first decision
    probe, custody = page.locator("img.wb-probe-picture"), page.locator("img.wb-custody-picture")
    expect(probe).to_be_visible()
    expect(custody).to_be_visible()
    left, right = probe.bounding_box(), custody.bounding_box()
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 5, "probe and custody face are not side by side"
    assert left["width"] >= 200 and abs(right["width"] - left["width"]) <= 8, f"not both large and alike: {left}, {right}"
    to_top(page.locator(".wb-candidate-section"))
    screenshot("02-side-by-side", full_page=False)
    for_docs(page, "reviewer-side-by-side.png")

    page.fill(".wb-reason textarea", SECOND_REASON)
    page.click(".wb-confirm")
    expect(status).to_contain_text(f"you confirmed {ANALYST}'s first decision 'possible match' on {SUBJECT}")
    screenshot("03-confirmed")

    page.locator(".wb-report-case select").select_option(label=CASE_REF)
    page.click(".wb-export-pdf")
    expect(status).to_contain_text("Report written", timeout=EXTRACT_TIMEOUT_MS)
    link = page.locator(".wb-download a")
    expect(link).to_be_visible()
    to_middle(page.locator(".wb-report-section"))
    screenshot("04-report-exported")
    with page.expect_download() as download:
        link.click()
    name = download.value.suggested_filename
    assert name.startswith(CASE_REF) and name.endswith(".pdf"), name
    pdf = tmp_path / name
    download.value.save_as(pdf)

    text = "\n".join(p.extract_text() for p in PdfReader(pdf).pages)
    flat = re.sub(r"\s+", " ", text)
    for wanted_text in (CASE_REF, SUBJECT, ANALYST, REVIEWER):
        assert wanted_text in flat, f"the report does not name {wanted_text}"


# -- 3. a bad upload -----------------------------------------------------------------------------


def test_a_bad_upload_is_named_plainly_and_the_page_keeps_working(page, analyst_server, still, screenshot, tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_text("these are notes typed by someone, not a video\n" * 20)
    open_dashboard(page, analyst_server.render_url("analyst.ipynb"), ".wb-case-ref input")
    status = page.locator(".wb-status")
    page.fill(".wb-case-ref input", DEMO_CASE)
    page.click(".wb-open-case")
    expect(status).to_contain_text(f"Case {DEMO_CASE} is open")

    upload(page, bad)
    expect(status).to_contain_text("Kept not_a_video.mp4")  # kept by its name's ending; read only when loaded
    page.click(".wb-extract")
    problem = page.locator(".wb-status .wb-status-error")
    expect(problem).to_contain_text("not_a_video.mp4", timeout=EXTRACT_TIMEOUT_MS)
    message = problem.inner_text()
    assert "Traceback" not in message and "Something went wrong" not in message, message
    assert re.search(r"[0-9a-f]{64}", message) is None, f"the stored name leaks into the message: {message}"
    to_top(page.locator(".wb-footage-panel"))
    screenshot("01-bad-upload", full_page=False)

    upload(page, still)  # the kernel still works: the next upload and extraction succeed
    expect(status).to_contain_text("Kept cctv_still.jpg")
    page.click(".wb-extract")
    expect(status).to_contain_text("cctv_still.jpg (uploaded): 1 face track", timeout=EXTRACT_TIMEOUT_MS)
    expect(page.locator(".wb-track-card")).to_have_count(1)
    screenshot("02-next-action-works", full_page=False)


# -- 4. the landing page -------------------------------------------------------------------------


def test_landing_page_lists_the_dashboards_and_technical_notebooks(page, analyst_server, screenshot):
    page.goto(analyst_server.url)
    for name in ("analyst.ipynb", "reviewer.ipynb", "gallery_admin.ipynb", "threshold_tuning.ipynb"):
        link = page.get_by_role("link", name=name)
        expect(link).to_have_attribute("href", re.compile(rf"^/voila/render/{re.escape(name)}"))
    screenshot("landing")
    # What the person who started the server reads in the terminal: no warnings meant for developers.
    started = analyst_server.log.read_text(errors="replace")
    assert "Warning" not in started and "Traceback" not in started, started[-3000:]
