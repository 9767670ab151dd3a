"""Load footage: a skin over ``Workspace.save_upload``, ``Workspace.exhibits`` and ``Workspace.extract``.

The analyst uploads a video or a still (kept in the workspace under its sha256; the name typed
by the browser is only ever shown, never used as a path), or chooses a file from the exhibits
folder. "Load footage" finds the faces in it and links them into tracks, in the background with
a progress bar and Cancel; a cancelled run keeps the tracks found so far. A still is footage
with one frame.

Why messages name the file as the analyst knows it: an upload is stored as ``<sha256>.mp4``, a
name that means nothing to them, so the library's messages have that path replaced by
"clip.mp4 (uploaded)".

CSS classes: ``wb-footage-panel`` (the section), ``wb-upload`` (the upload button),
``wb-footage-choice`` (which footage to load), ``wb-refresh-exhibits``, ``wb-fps`` (frames per
second checked), ``wb-extract`` ("Load footage"), ``wb-footage-summary``.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..errors import WorkbenchError
from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .layout import hint, plural, section, set_disabled

if TYPE_CHECKING:
    from ..footage import FootageResult

#: share of the progress bar for finding faces; the rest is for the first page of thumbnails.
_EXTRACT_SHARE = 0.9


@dataclass(frozen=True)
class LoadedFootage:
    """Footage whose faces were found, as the page shows it.

    Attributes:
        footage: the library's :class:`~workbench.footage.FootageResult`.
        label: the name the analyst knows it by ("clip.mp4 (uploaded)", "cam2/clip.mp4 (exhibits)").
        seconds: wall-clock time the extraction took, seconds.
        progress: the task's progress callback, for work that follows (thumbnails).
    """

    footage: FootageResult
    label: str
    seconds: float
    progress: Callable[[float, float], None] | None = None


def known_suffixes() -> list[str]:
    """File name endings an upload may have (the ones ``Workspace.save_upload`` keeps).

    Imported when first needed: the list lives beside the video reader, whose imports take about
    a second, which the page should not wait for before it appears.
    """
    from ..cases.investigate import VIDEO_SUFFIXES
    from ..images import IMAGE_SUFFIXES

    return sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES)


class FootagePanel:
    """Upload or choose footage, then find the faces in it.

    Attributes:
        upload: the upload button (one file at a time).
        choice: which footage "Load footage" reads (uploads of this page, then the exhibits).
        refresh_button: lists the exhibits folder again.
        fps: frames per second of video checked for faces.
        extract_button: "Load footage".
        summary: what was loaded last.
        loaded: the last :class:`LoadedFootage`, or None.
        runner: the task runner (tests ``.wait()`` on it).
        widget: the section to display.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.loaded: LoadedFootage | None = None
        self._uploads: list[tuple[str, str]] = []  # (label, path), newest first
        self._labels: dict[str, str] = {}  # path -> the name shown for it
        self._listeners: list[Callable[[LoadedFootage], None]] = []

        limit_mb = ws.settings.upload_max_bytes / 1e6
        self.upload = widgets.FileUpload(
            description="Upload footage",
            multiple=False,
            layout=widgets.Layout(width="190px"),
            tooltip=f"a video or a still, up to {limit_mb:.0f} MB",
        )
        self.upload.add_class("wb-upload")
        self.choice = widgets.Dropdown(
            description="Footage", options=[], value=None, layout=widgets.Layout(width="460px"), style={"description_width": "80px"}
        )
        self.choice.add_class("wb-footage-choice")
        self.refresh_button = widgets.Button(description="Refresh exhibits list", tooltip=f"look again in {ws.settings.exhibits_path}")
        self.refresh_button.add_class("wb-refresh-exhibits")
        self.fps = widgets.BoundedFloatText(
            value=ws.settings.footage_fps,
            min=0.1,
            max=60.0,
            step=0.5,
            description="Frames per second",
            style={"description_width": "130px"},
            layout=widgets.Layout(width="210px"),
        )
        self.fps.add_class("wb-fps")
        self.extract_button = widgets.Button(
            description="Load footage",
            button_style="primary",
            tooltip="find the faces in the chosen footage (it can be cancelled; what was found is kept)",
        )
        self.extract_button.add_class("wb-extract")
        self.summary = widgets.HTML()
        self.summary.add_class("wb-footage-summary")

        self.upload.observe(status.guard("Uploading")(self._upload_changed), names="value")
        self.refresh_button.on_click(status.guard("Listing the exhibits")(lambda _: self.refresh_exhibits()))
        self.extract_button.on_click(status.guard("Loading footage")(self._extract_clicked))

        self.widget = section(
            "2. Footage",
            [
                widgets.HBox(
                    [
                        self.upload,
                        hint(f"a video or a still image, up to {limit_mb:.0f} MB; larger files: ask for them in the exhibits folder"),
                    ],
                    layout=widgets.Layout(align_items="center"),
                ),
                widgets.HBox([self.choice, self.refresh_button]),
                widgets.HBox(
                    [self.fps, hint("of video checked for faces: more finds more faces and takes longer")],
                    layout=widgets.Layout(align_items="center"),
                ),
                widgets.HBox([self.extract_button]),
                self.summary,
            ],
            "wb-footage-panel",
        )
        self.set_enabled(False)

    # -- what others use ------------------------------------------------------------------------

    @property
    def controls(self) -> list[widgets.Widget]:
        return [self.upload, self.choice, self.refresh_button, self.fps, self.extract_button]

    def set_enabled(self, enabled: bool) -> None:
        if enabled and not self.upload.accept:
            self.upload.accept = ",".join(known_suffixes())  # the file chooser then offers footage only
        set_disabled(self.controls, not enabled)

    def on_loaded(self, callback: Callable[[LoadedFootage], None]) -> None:
        """Call ``callback(loaded)`` (in the runner's thread) after each extraction."""
        self._listeners.append(callback)

    def label_of(self, path: str | Path) -> str:
        """The name the analyst knows a file by."""
        return self._labels.get(str(path), Path(path).name)

    # -- choosing footage -----------------------------------------------------------------------

    def refresh_exhibits(self) -> None:
        """List the uploads of this page, then every image and video of the exhibits folder."""
        root = self.ws.settings.exhibits_path
        exhibits = []
        for path in self.ws.exhibits():
            label = f"{path.relative_to(root).as_posix()} (exhibits)"
            self._labels[str(path)] = label
            exhibits.append((label, str(path)))
        current = self.choice.value
        options = self._uploads + exhibits
        self.choice.options = options
        paths = [p for _, p in options]
        self.choice.value = current if current in paths else (paths[0] if paths else None)
        if not options:
            self.summary.value = (
                f'<span class="wb-hint">No footage yet: upload a file, or ask for it to be put in {html.escape(str(root))}.</span>'
            )
        elif "No footage yet" in self.summary.value:
            self.summary.value = ""

    def choose(self, path: str | Path) -> None:
        """Make ``path`` (an upload or an exhibit already listed) the footage to load."""
        self.choice.value = str(path)

    def _upload_changed(self, change) -> None:
        files = change["new"]
        if files:
            self.receive_upload(files)

    def receive_upload(self, files: Sequence[dict]) -> None:
        """Keep uploaded files (ipywidgets 8 FileUpload values: dicts with name and content).

        Kept in the runner's thread: writing and hashing a large video takes a moment.
        """
        files = [(Path(str(f.get("name") or "upload")).name, f["content"]) for f in files]

        def work(progress, cancel) -> list[tuple[str, Path]]:
            kept = []
            for i, (name, content) in enumerate(files):
                kept.append((name, self.ws.save_upload(name, bytes(content))))
                progress(i + 1, len(files))
            return kept

        def done(kept: list[tuple[str, Path]]) -> None:
            for name, path in kept:
                label = f"{name} (uploaded)"
                self._labels[str(path)] = label
                self._uploads = [(label, str(path))] + [u for u in self._uploads if u[1] != str(path)]
            self.refresh_exhibits()
            self.choose(kept[-1][1])
            self.status.success(f"Kept {', '.join(n for n, _ in kept)}: click 'Load footage' to find the faces in it.")

        try:
            self.runner.run("Keeping the upload", work, done, disable=self.controls, cancellable=False)
        finally:
            self.upload.value = ()  # so the same file can be chosen again

    # -- finding faces --------------------------------------------------------------------------

    def _extract_clicked(self, _button=None) -> None:
        path = self.choice.value
        if not path:
            raise WorkbenchError("choose footage first: upload a file or pick one from the exhibits list")
        self.load(path)

    def load(self, path: str | Path, *, fps: float | None = None) -> bool:
        """Find the faces in ``path`` in the background (``fps``: default the field's value)."""
        path = str(path)
        label = self.label_of(path)
        fps = float(self.fps.value if fps is None else fps)
        return self.runner.run(
            "Loading footage",
            lambda progress, cancel: self._extract(path, label, fps, progress, cancel),
            self._loaded,
            disable=self.controls,
        )

    def _extract(self, path: str, label: str, fps: float, progress, cancel: threading.Event) -> LoadedFootage:
        started = time.monotonic()
        try:
            footage = self.ws.extract(path, fps=fps, progress=lambda done, total: progress(_EXTRACT_SHARE * done, total), cancel=cancel)
        except WorkbenchError as exc:
            raise WorkbenchError(self._in_plain_names(str(exc), path, label)) from exc

        def rest_of_the_bar(done: float, total: float) -> None:
            if total:
                progress(_EXTRACT_SHARE + (1 - _EXTRACT_SHARE) * done / total, 1.0)

        return LoadedFootage(footage, label, time.monotonic() - started, rest_of_the_bar)

    def _in_plain_names(self, message: str, path: str, label: str) -> str:
        """The library's message with the stored path replaced by the name the analyst knows."""
        return message.replace(path, label) if path in message else f"{label}: {message}"

    def _loaded(self, loaded: LoadedFootage) -> None:
        self.loaded = loaded
        footage = loaded.footage
        for callback in self._listeners:
            callback(loaded)
        n = len(footage.tracks)
        found = f"{plural(n, 'face track')} in {plural(footage.frames_sampled, 'frame')} checked"
        self.summary.value = f"<b>{html.escape(loaded.label)}</b>: {found} ({loaded.seconds:.1f} s)."
        problems = [self._in_plain_names(w, footage.info.path, loaded.label) for w in footage.warnings]
        if problems:
            self.status.warning(f"{loaded.label}: {found}. Kept what was found. " + " ".join(problems))
        elif n == 0:
            self.status.warning(
                f"{loaded.label}: no face found in {footage.frames_sampled} frame(s). You can draw a box round a face in part 4."
            )
        else:
            self.status.success(f"{loaded.label}: {found}. Tick the faces to search in part 3.")
