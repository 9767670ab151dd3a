"""Benchmark the analyst's dashboard in a real browser: Voila serving ``notebooks/analyst.ipynb``,
driven by headless Chromium (Playwright), on a gallery of 10,000 faces.

    .venv/bin/python bench/bench_dashboard.py [--faces 10000] [--repeats 3] [--opens 5] [--loops 1] [--home DIR]

Measured, wall time in seconds, median and spread (min-max) of the runs:

* **page open -> usable**: ``page.goto`` of /voila/render/analyst.ipynb until the case reference
  field is enabled. Every open starts a new kernel (Voila pre-heats none, see ``ui/serve.py``)
  that imports the workbench and builds the page.
* **Search -> candidates**: click "Search selected faces" (one face track of the clip, 20
  candidates) until the candidate cards are shown and the status line says the search is
  recorded: the probe made from the track, the exact search of the gallery, the record, the
  custody pictures of the cards, the page update.
* **extraction**: click "Load footage" until the track cards are shown (the status line says so
  after the cards arrive), against ``Workspace.extract`` of the same clip at the same frame rate
  in this process, engine warm. The two alternate run by run, so drifting load hits both alike;
  the ratio is taken per pair. The dashboard's time also holds what only it does: the best-shot
  thumbnails of the cards and the first frame for drawing by hand. The first extraction of a
  page (its kernel loads the models) is shown apart.

The gallery: the demo's 8 subjects from package images (``workbench.demo``) and SYNTHETIC faces
up to ``--faces``: embeddings from ``bench/synthetic.py``'s model of SFace (no pictures, so their
candidate cards say "image gone"), subjects ``SYNTHETIC-nnnnnn`` with source "synthetic",
audited as synthetic. Galleries under ``exact_search_below`` are searched exactly. The clip is
the demo's SYNTHETIC clip (4 s, 640x360), put in the exhibits folder, or ``--loops`` copies of
it back to back (also SYNTHETIC). The probe is its walker, DEMO-T1-4; the table says whether he
stayed the first candidate.

Figures, never assertions: wall time depends on the machine and on its load, printed beside
them (other engineers share the cores). A timing is taken in Python around Playwright calls
that poll the page on each animation frame (about 16 ms).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from synthetic import SFACE_MODEL

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium"))
# As tests/browser/conftest.py: no sandbox (root in CI), nothing calling home, pages on this machine.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
USER = "bench-analyst"
SUBJECT = "DEMO-T1-4"
TIMEOUT_MS = 300_000  # one step under heavy load; a figure, not a test
SYNTHETIC_BATCH = 2_000


def load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


# -- the workspace -------------------------------------------------------------------------------


def loop_clip(source: Path, target: Path, loops: int) -> Path:
    """``loops`` copies of ``source`` back to back (re-encoded as OpenCV's MPEG-4, as the demo is)."""
    import cv2

    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return target


def add_synthetic_faces(ws, count: int, *, seed: int = 0) -> int:
    """Store ``count`` SYNTHETIC faces (one per subject) in the gallery; returns how many were stored."""
    from workbench.gallery.store import EnrolledImage, SubjectRecord
    from workbench.types import Face

    pack_id = ws.engine.pack_id
    dim = int(ws.engine.analyse(ws.home / "demo" / "probes" / "cctv_still.jpg")[0].embedding.shape[0])
    model = SFACE_MODEL if dim == SFACE_MODEL.dim else dataclasses.replace(SFACE_MODEL, dim=dim)
    rng = np.random.default_rng(seed)
    embeddings = model.samples(model.identities(count, rng), rng)
    landmarks = np.zeros((5, 2), np.float32)
    stored = 0
    for start in range(0, count, SYNTHETIC_BATCH):
        images = []
        for i in range(start, min(count, start + SYNTHETIC_BATCH)):
            subject = f"SYNTHETIC-{i:06d}"
            face = Face((0.0, 0.0, 112.0, 112.0), landmarks, 1.0, embedding=embeddings[i], pack_id=pack_id)
            record = SubjectRecord(subject, source="synthetic")
            images.append(EnrolledImage(record, f"synthetic/{subject}", f"synthetic-{seed}-{i}", 0, 112, 112, 1, face))
        ids = ws.gallery.add_images(images, audit_details={"synthetic": True, "bench": "bench_dashboard"})
        stored += sum(i is not None for i in ids)
    return stored


def prepare(home: Path, faces: int, loops: int) -> tuple[Path, int]:
    """The demo workspace with ``faces`` gallery faces and the clip in its exhibits folder; (clip, faces)."""
    from workbench import Workspace
    from workbench.demo import build_demo_workspace

    with Workspace.open(home, user="bench-admin") as ws:
        built = build_demo_workspace(ws)
        live = ws.gallery_stats()["faces"]
        if live < faces:
            started = time.monotonic()
            added = add_synthetic_faces(ws, faces - live)
            print(f"gallery: {added:,} SYNTHETIC faces added to {live} real ones in {time.monotonic() - started:.1f} s")
        total = ws.gallery_stats()["faces"]
    exhibits = home / "exhibits"
    exhibits.mkdir(mode=0o700, exist_ok=True)  # the workspace warns when others can read a folder of it
    source = Path(built["clip"])
    clip = exhibits / (source.name if loops == 1 else f"{source.stem}_x{loops}.mp4")
    if clip.exists():
        pass
    elif loops == 1:
        shutil.copyfile(source, clip)
    else:
        loop_clip(source, clip, loops)
    return clip, total


# -- the server and the browser -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Voila:
    """Voila on the project's notebooks as USER until closed (its kernels with it)."""

    def __init__(self, home: Path, scratch: Path):
        from workbench.ui.serve import DEFAULT_NOTEBOOKS, server_env, server_url, voila_command, wait_until_ready

        port = free_port()
        env = server_env(home, {"WORKBENCH_USER": USER, "JUPYTER_CONFIG_DIR": str(scratch / "jupyter-config")})
        self.log = scratch / "voila.log"
        started = time.monotonic()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                voila_command(DEFAULT_NOTEBOOKS, port=port), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = server_url("127.0.0.1", port)
        if not wait_until_ready(self.url, self.process, 120):
            self.close()
            sys.exit(f"Voila did not start; its output:\n{self.log.read_text()[-3000:]}")
        self.started_in = time.monotonic() - started

    def close(self) -> None:
        from workbench.ui.serve import stop

        stop(self.process)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # kernels Voila failed to shut down
        except ProcessLookupError:
            pass


STATUS_WATCH = """() => {
    const status = document.querySelector('.wb-status');
    window.__wbChanges = [];
    new MutationObserver(() => window.__wbChanges.push(status.innerText))
        .observe(status, {subtree: true, childList: true, characterData: true});
}"""
CHANGED_TO = "([after, text]) => (window.__wbChanges || []).slice(after).some(t => t.includes(text))"


def click_until(page, selector: str, text: str) -> float:
    """Click ``selector``; seconds until the status line changes to a text holding ``text``."""
    after = page.evaluate("() => window.__wbChanges.length")
    started = time.monotonic()
    page.click(selector)
    page.wait_for_function(CHANGED_TO, arg=[after, text], timeout=TIMEOUT_MS)
    return time.monotonic() - started


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process and the ones it started, by role."""
    import psutil

    me = psutil.Process()
    times = me.cpu_times()
    totals = {"this process": times.user + times.system}
    for process in me.children(recursive=True):
        try:
            times, command, name = process.cpu_times(), " ".join(process.cmdline()), process.name()
        except psutil.Error:  # gone meanwhile
            continue
        if "ipykernel" in command:
            role = "kernel"
        elif process.pid == server_pid:
            role = "Voila server"
        elif "chrom" in name:
            role = "Chromium"
        else:
            role = "Playwright driver"
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {role: max(0.0, after[role] - before.get(role, 0.0)) for role in after}


def kernel_seconds(page) -> float:
    """How long ``Workspace.extract`` took in the kernel, as the footage summary says ("... (5.1 s).")."""
    text = page.locator(".wb-footage-summary").inner_text()
    found = re.search(r"\(([0-9.]+) s\)\.?\s*$", text)
    return float(found.group(1)) if found else float("nan")


def open_page(browser, url: str):
    """(context, page, seconds until the case reference field is enabled)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    started = time.monotonic()
    page.goto(url)
    expect(page.locator(".wb-case-ref input")).to_be_enabled(timeout=TIMEOUT_MS)
    return context, page, time.monotonic() - started


# -- the runs -------------------------------------------------------------------------------------


def spread(values: list[float], unit: str = "s", digits: int = 2) -> tuple[str, str]:
    med = statistics.median(values)
    return f"{med:.{digits}f} {unit}", f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=10_000, help="gallery faces: the demo's 8 real ones plus SYNTHETIC ones")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the search and of the extraction (3-5)")
    parser.add_argument("--opens", type=int, default=5, help="page opens measured")
    parser.add_argument("--loops", type=int, default=1, help="copies of the 4 s demo clip back to back (1: the demo clip)")
    parser.add_argument("--home", type=Path, help="workspace folder to build or reuse (default: a temporary one, removed)")
    args = parser.parse_args()
    command = ".venv/bin/python bench/bench_dashboard.py " + shlex.join(sys.argv[1:])
    if not CHROMIUM.exists():
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set WORKBENCH_CHROMIUM)")

    scratch = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    home = args.home.resolve() if args.home else scratch / "workspace"
    # The audit key and checkpoints live outside the workspace: beside it, not in the user's home.
    secrets = home.parent / f".{home.name}-audit"
    os.environ.setdefault("WORKBENCH_AUDIT_KEY_FILE", str(secrets / "audit-{workspace_id}.key"))
    os.environ.setdefault("WORKBENCH_AUDIT_CHECKPOINT_DIR", str(secrets / "checkpoints" / "{workspace_id}"))
    print(f"bench_dashboard: {os.cpu_count()} cores, load {load()} (1/5/15 min); workspace {home}")

    from playwright.sync_api import expect, sync_playwright

    from workbench import Workspace

    clip, faces = prepare(home, args.faces, args.loops)
    server = Voila(home, scratch)
    rows: list[tuple[str, str, str, str]] = []
    try:
        url = f"{server.url}voila/render/analyst.ipynb"
        print(f"Voila up in {server.started_in:.1f} s at {server.url}; load {load()}")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)

            # 1. Page open -> usable, a new kernel each time.
            before = load()
            opens = []
            for _ in range(args.opens):
                context, _page, seconds = open_page(browser, url)
                opens.append(seconds)
                context.close()
                time.sleep(1.0)  # the closed page's kernel shuts down
            rows.append(("analyst page open -> case field usable (new kernel)", str(len(opens)), *spread(opens), f"load {before}"))
            print(f"page opens: {', '.join(f'{s:.2f}' for s in opens)} s")

            # 2. One page: open DEMO-1, the clip from the exhibits; extraction and search alternate.
            context, page, _ = open_page(browser, url)
            page.evaluate(STATUS_WATCH)
            page.fill(".wb-case-ref input", "DEMO-1")
            click_until(page, ".wb-open-case", "Case DEMO-1 is open")
            shown = page.locator(".wb-footage-choice select").evaluate("s => s.options[s.selectedIndex].text").replace("\xa0", " ")
            assert shown == f"{clip.name} (exhibits)", f"the page offers {shown!r}, not the clip"
            cold = click_until(page, ".wb-extract", "Tick the faces to search")
            cards = page.locator(".wb-track-card").count()
            print(f"first extraction in the page (models load): {cold:.2f} s, {cards} track cards")

            with Workspace.open(home, user="bench-admin") as ws:
                warm_up = ws.extract(clip)  # loads the models of this process
                footage_s = (warm_up.info.duration_s or 0.0) or len(warm_up.sampled_frames) / ws.settings.footage_fps
                dashboard, in_kernel, in_process, searches, firsts = [], [], [], [], []
                load_before = load()
                cpu_dashboard, cpu_in_process = [], []
                for _ in range(args.repeats):
                    cpu = cpu_seconds(server.process.pid)
                    dashboard.append(click_until(page, ".wb-extract", "Tick the faces to search"))
                    cpu_dashboard.append(difference(cpu_seconds(server.process.pid), cpu))
                    in_kernel.append(kernel_seconds(page))
                    cpu = cpu_seconds(server.process.pid)
                    started = time.monotonic()
                    ws.extract(clip)
                    in_process.append(time.monotonic() - started)
                    cpu_in_process.append(difference(cpu_seconds(server.process.pid), cpu))
                    page.locator(".wb-track-card").first.locator(".wb-track-select input").check()
                    searches.append(click_until(page, ".wb-search", "recorded:"))
                    first = page.locator(".wb-candidate-card").first
                    expect(first).to_be_visible()
                    firsts.append(f"#1 {SUBJECT}" in first.inner_text())
                    print(
                        f"run {len(dashboard)}: dashboard extraction {dashboard[-1]:.2f} s (in the kernel {in_kernel[-1]:.1f} s), "
                        f"in-process {in_process[-1]:.2f} s, "
                        f"search {searches[-1]:.2f} s; load {load()}"
                    )
                load_after = load()
            context.close()
            browser.close()

        ratios = [d / p for d, p in zip(dashboard, in_process)]
        after = [d - k for d, k in zip(dashboard, in_kernel)]
        loads = f"load {load_before} -> {load_after}"
        clip_text = f"{footage_s:.0f} s clip, 5 fps"

        def row(measure: str, values: list[float], conditions: str = "") -> None:
            rows.append((measure, str(len(values)), *spread(values), conditions))

        row(f"click Search -> candidate cards (1 track, top 20, {faces:,} faces, exact)", searches, loads)
        rows.append(("click Load footage -> track cards, first in a page (kernel loads models)", "1", f"{cold:.2f} s", "-", ""))
        row(f"click Load footage -> track cards ({clip_text})", dashboard, loads)
        row("... of which Workspace.extract in the kernel (the page's own timing, 0.1 s)", in_kernel)
        row("... of which the rest: thumbnails, first frame to draw on, page update", after)
        row(f"Workspace.extract in-process, same clip ({clip_text})", in_process, "runs alternate with the dashboard's")
        median = statistics.median(ratios)
        overhead = f"dashboard adds {(median - 1) * 100:+.0f}% (target: at most +10%)"
        ratio_spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        rows.append(("dashboard / in-process extraction (per pair)", str(len(ratios)), f"{median:.2f}x", ratio_spread, overhead))
    finally:
        server.close()
        if args.home is None:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(secrets, ignore_errors=True)

    print()
    print(f"Analyst dashboard in headless Chromium, Voila, {os.cpu_count()} cores; gallery {faces:,} faces "
          f"(8 real package-image subjects + SYNTHETIC embeddings); clip {clip.name} (SYNTHETIC)")  # fmt: skip
    print()
    print("| measure | runs | median | min-max | conditions |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    roles = ["kernel", "Chromium", "Voila server", "Playwright driver", "this process"]
    print("CPU seconds (user + system, all threads) per extraction of the clip, median of the runs:")
    print()
    print("| extraction | " + " | ".join(roles) + " | total |")
    print("|---" * (len(roles) + 2) + "|")
    for label, runs in (("through the dashboard", cpu_dashboard), ("Workspace.extract in-process", cpu_in_process)):
        medians = [statistics.median(run.get(role, 0.0) for run in runs) for role in roles]
        total = statistics.median(sum(run.values()) for run in runs)
        print(f"| {label} | " + " | ".join(f"{m:.2f}" for m in medians) + f" | {total:.2f} |")
    print()
    print(f"{SUBJECT} first candidate in every search: {'yes' if all(firsts) else f'no ({sum(firsts)} of {len(firsts)})'}")
    print(f"load after: {load()} (1/5/15 min)")
    print(f"command: {command}")


if __name__ == "__main__":
    main()
