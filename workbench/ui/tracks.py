"""The face tracks found in footage, as a grid of cards: a skin over ``FootageResult.thumbnail``.

Each card shows the track's best shot, when it is seen (seconds from the start of the footage),
how many faces it holds and the best shot's quality (0 to 1). A track whose best shot is of low
quality (under :data:`LOW_QUALITY`) is marked with a dashed orange border and a badge, never
hidden: a poor face can still be the only lead. The analyst ticks the tracks to search and can
open a strip of a few of a track's faces.

Why pages: every thumbnail is decoded from the footage again, so only the cards shown are
decoded (:data:`PAGE_SIZE` at a time); the strip decodes only the faces it shows.

CSS classes: ``wb-tracks-panel`` (the section), ``wb-tracks-summary``, ``wb-track-grid``,
``wb-track-card`` (plus ``wb-low-quality``), ``wb-track-select`` (the tick box "Search this
face"), ``wb-track-frames`` ("Show frames"), ``wb-tracks-prev`` / ``wb-tracks-next`` (pages),
``wb-track-strip`` (the strip of a track's faces).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np

from ..errors import WorkbenchError
from .feedback import StatusLine, TaskRunner
from .footage_panel import LoadedFootage
from .layout import badge, caption, card, card_grid, discard, plural, section, set_disabled
from .pictures import THUMB_PX, picture

if TYPE_CHECKING:
    from ..footage import FootageResult
    from ..types import Track

#: a best shot of quality under this is marked "low quality" (the library's bar for probe faces).
LOW_QUALITY = 0.4
#: cards per page: each one is a decoded frame.
PAGE_SIZE = 24
#: faces shown in a track's strip.
STRIP_FACES = 6


def strip_faces(track: Track, count: int = STRIP_FACES) -> list:
    """Up to ``count`` of a track's faces spread evenly over its time, always with the best shot."""
    if track.n_faces <= count:
        return list(track.faces)
    picks = set(np.linspace(0, track.n_faces - 1, count - 1).round().astype(int).tolist()) | {track.best_index}
    return [track.faces[i] for i in sorted(picks)]


class TrackCard:
    """One track: best shot, times, quality, a tick box to search it and a button for its frames."""

    def __init__(self, track: Track, thumbnail: np.ndarray | None, *, selected: bool):
        self.track_id = track.track_id
        self.low_quality = track.quality < LOW_QUALITY
        quality = f"quality {track.quality:.2f}" + (" " + badge("low quality", "warn") if self.low_quality else "")
        self.select = widgets.Checkbox(value=selected, description="Search this face", indent=False, layout=widgets.Layout(width="auto"))
        self.select.add_class("wb-track-select")
        self.frames_button = widgets.Button(
            description="Show frames", layout=widgets.Layout(width="auto"), tooltip="show a few of this track's faces"
        )
        self.frames_button.add_class("wb-track-frames")
        self.widget = card(
            [
                picture(thumbnail, THUMB_PX, alt="frame unreadable"),
                caption(
                    [
                        f"<b>Track {track.track_id}</b>",
                        f"{track.start_s:.1f}&ndash;{track.end_s:.1f} s, {plural(track.n_faces, 'face')}",
                        quality,
                    ]
                ),
                self.select,
                self.frames_button,
            ],
            "wb-track-card",
        )
        if self.low_quality:
            self.widget.add_class("wb-low-quality")


class TracksGrid:
    """The grid of track cards, its pages and the strip of one track's faces.

    Attributes:
        cards: {track_id: :class:`TrackCard`} of the page shown.
        grid: the cards of the page shown.
        strip: thumbnails of the faces of the track last opened.
        summary: how many tracks, and what the marks mean.
        footage: the footage shown, or None.
        runner: the task runner (tests ``.wait()`` on it).
        widget: the section to display.
    """

    def __init__(self, status: StatusLine, runner: TaskRunner):
        self.status, self.runner = status, runner
        self.footage: FootageResult | None = None
        self.cards: dict[int, TrackCard] = {}
        self.page = 0
        self._selected: set[int] = set()

        self.summary = widgets.HTML('<span class="wb-hint">The faces found in the footage appear here.</span>')
        self.summary.add_class("wb-tracks-summary")
        self.grid = card_grid([])
        self.grid.add_class("wb-track-grid")
        self.prev_button = widgets.Button(description="Previous page")
        self.prev_button.add_class("wb-tracks-prev")
        self.next_button = widgets.Button(description="Next page")
        self.next_button.add_class("wb-tracks-next")
        self.page_label = widgets.Label()
        self.pager = widgets.HBox(
            [self.prev_button, self.page_label, self.next_button], layout=widgets.Layout(display="none", align_items="center")
        )
        self.strip_title = widgets.HTML()
        self.strip = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap", grid_gap="6px"))
        self.strip.add_class("wb-track-strip")

        self.prev_button.on_click(status.guard("Showing the tracks")(lambda _: self.show_page(self.page - 1)))
        self.next_button.on_click(status.guard("Showing the tracks")(lambda _: self.show_page(self.page + 1)))

        self.widget = section("3. Face tracks", [self.summary, self.pager, self.grid, self.strip_title, self.strip], "wb-tracks-panel")
        self.set_enabled(False)

    # -- what others use ------------------------------------------------------------------------

    @property
    def controls(self) -> list[widgets.Widget]:
        return [self.prev_button, self.next_button] + [w for c in self.cards.values() for w in (c.select, c.frames_button)]

    def set_enabled(self, enabled: bool) -> None:
        set_disabled(self.controls, not enabled)

    def selected_track_ids(self) -> list[int]:
        """The tracks ticked for search, on any page."""
        return sorted(self._selected)

    def select(self, track_id: int, selected: bool = True) -> None:
        """Tick (or untick) a track for search, as its tick box does."""
        if track_id in self.cards:
            self.cards[track_id].select.value = selected  # the box's observer updates the set
        elif selected:
            self._selected.add(int(track_id))
        else:
            self._selected.discard(int(track_id))

    # -- showing footage --------------------------------------------------------------------------

    def show(self, loaded: LoadedFootage) -> None:
        """Show the tracks of newly loaded footage (first page; called in the runner's thread)."""
        self.footage = loaded.footage
        self._selected = set()
        self._clear_strip()
        tracks = loaded.footage.tracks
        low = sum(t.quality < LOW_QUALITY for t in tracks)
        if not tracks:
            self.summary.value = '<span class="wb-hint">No face track was found. You can draw a box round a face in part 4.</span>'
        else:
            marks = (
                f" {low} marked {badge('low quality', 'warn')}: the best shot is poor (quality under {LOW_QUALITY}); "
                "it may give poor candidates."
                if low
                else ""
            )
            self.summary.value = f"{plural(len(tracks), 'face track')}: tick the ones to search.{marks}"
        self._render(0, self._thumbnails(0, loaded.progress))

    def show_page(self, page: int) -> bool:
        """Show another page of cards (decoding its thumbnails in the background)."""
        if self.footage is None:
            return False
        page = max(0, min(page, self._pages() - 1))
        return self.runner.run(
            "Showing the tracks",
            lambda progress, cancel: self._thumbnails(page, progress, cancel),
            lambda thumbs: self._render(page, thumbs),
            disable=self.controls,
        )

    def _pages(self) -> int:
        return max(1, -(-len(self.footage.tracks) // PAGE_SIZE))

    def _page_tracks(self, page: int) -> list[Track]:
        return list(self.footage.tracks[page * PAGE_SIZE : (page + 1) * PAGE_SIZE])

    def _thumbnails(self, page: int, progress=None, cancel=None) -> dict[int, np.ndarray | None]:
        """Best-shot crops of one page's tracks (None for a frame that cannot be read again)."""
        tracks = self._page_tracks(page)
        thumbs: dict[int, np.ndarray | None] = {}
        for i, track in enumerate(tracks):
            if cancel is not None and cancel.is_set():
                break
            thumbs[track.track_id] = self._thumbnail(track.track_id)
            if progress is not None:
                progress(i + 1, len(tracks))
        return thumbs

    def _thumbnail(self, track_id: int, frame_index: int | None = None) -> np.ndarray | None:
        try:
            return self.footage.thumbnail(track_id, frame_index)
        except WorkbenchError:
            return None  # the source moved or is damaged there: the card says so

    def _render(self, page: int, thumbnails: dict[int, np.ndarray | None]) -> None:
        self.page = page
        old = list(self.grid.children)
        self.cards = {}
        for track in self._page_tracks(page):
            card_ = TrackCard(track, thumbnails.get(track.track_id), selected=track.track_id in self._selected)
            card_.select.observe(self._ticked(track.track_id), names="value")
            card_.frames_button.on_click(
                self.status.guard(f"Showing the frames of track {track.track_id}")(self._frames_clicked(track.track_id))
            )
            self.cards[track.track_id] = card_
        self.grid.children = [c.widget for c in self.cards.values()]
        discard(old)
        pages = self._pages()
        self.pager.layout.display = None if pages > 1 else "none"
        self.page_label.value = f"page {page + 1} of {pages}"
        self.prev_button.disabled, self.next_button.disabled = page == 0, page >= pages - 1

    def _ticked(self, track_id: int):
        def changed(change) -> None:
            (self._selected.add if change["new"] else self._selected.discard)(track_id)

        return changed

    # -- the strip of one track's faces --------------------------------------------------------

    def _frames_clicked(self, track_id: int):
        return lambda _button=None: self.show_frames(track_id)

    def show_frames(self, track_id: int) -> bool:
        """Show a few of a track's faces (decoded in the background)."""
        track = self.footage.track(track_id)
        faces = strip_faces(track)

        def work(progress, cancel) -> list[tuple[object, np.ndarray | None]]:
            crops = []
            for i, face in enumerate(faces):
                if cancel.is_set():
                    break
                crops.append((face, self._thumbnail(track_id, face.frame_index)))
                progress(i + 1, len(faces))
            return crops

        def done(crops) -> None:
            old = list(self.strip.children)
            self.strip.children = [
                card(
                    [
                        picture(crop, THUMB_PX, alt="frame unreadable"),
                        caption(
                            [
                                f"{face.timestamp_s:.2f} s" + (" " + badge("best", "good") if face is track.best else ""),
                                f"quality {face.quality_score:.2f}",
                            ]
                        ),
                    ],
                    "wb-strip-face",
                )
                for face, crop in crops
            ]
            discard(old)
            self.strip_title.value = f"<b>Track {track_id}</b>: {len(crops)} of its {track.n_faces} faces, in time order"
            self.status.info(f"Showing {len(crops)} faces of track {track_id}.")

        return self.runner.run(f"Showing the frames of track {track_id}", work, done, disable=self.controls)

    def _clear_strip(self) -> None:
        old = list(self.strip.children)
        self.strip.children = []
        discard(old)
        self.strip_title.value = ""
