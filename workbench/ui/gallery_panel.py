"""The gallery's figures, rebuilding its search index, and removing a subject (with a confirmation).

Skins over :meth:`Workspace.gallery_stats`, :meth:`Workspace.rebuild_index` and
:meth:`Workspace.remove_subject`. Removing deletes a subject's custody images, faces and
embeddings for good (audited) and compacts the database so the bytes leave the file; it takes
two clicks: "Remove subject..." asks, "Yes, remove <id>" does it. The search index keeps a copy
of the removed embeddings until it is rebuilt (search already ignores them), so the panel says so.

CSS classes: ``wb-gallery`` (the panel), ``wb-stats`` (the figures table), ``wb-stats-button``,
``wb-rebuild``, ``wb-remove-subject`` (the id field), ``wb-remove`` (asks), ``wb-remove-confirm``
(the confirmation box), ``wb-remove-yes``, ``wb-remove-no``.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from ..errors import WorkbenchError
from ..workspace import Workspace
from .download import human_size
from .feedback import StatusLine, TaskRunner
from .tables import key_value_table, plural


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} hours ago"
    return f"{seconds / 86400:.0f} days ago"


def stats_rows(stats: dict) -> list[tuple[str, object]]:
    """The figures of :meth:`Workspace.gallery_stats` as (label, value) rows people can read."""
    index = stats.get("index")
    pack = stats.get("pack_id")
    rows = [
        ("Subjects", stats["subjects"]),
        ("Custody images", stats["images"]),
        ("Faces (one per image)", stats["faces"]),
        ("Images in which several faces were found", stats["images_with_several_faces"]),
        ("Model pack", pack.split("@")[0] + " (" + pack.split("@")[1][:12] + ")" if pack else "none yet (empty gallery)"),
        (
            "How searches run",
            {"exact": "exact comparison with every face", "index": "search index, re-ranked exactly"}.get(
                stats["search_method"], stats["search_method"].replace("exact on", "exact comparison with every face, on")
            ),
        ),
    ]
    if index:
        rows += [
            ("Search index built", f"{index['built_utc'].replace('T', ' ')[:19]} UTC ({_age(index['age_s'])})"),
            ("Faces in the index", index["count"]),
            ("Index size", human_size(index["bytes"])),
        ]
    else:
        rows.append(("Search index", "none built (searches compare with every face, which is exact)"))
    rows += [
        ("Faces enrolled since the index was built", stats["not_indexed"]),
        ("Faces removed since the index was built", stats["removed_since_build"]),
    ]
    if stats.get("index_problem"):
        rows.append(("Index problem", f"{stats['index_problem']} (rebuild the index)"))
    return rows


class GalleryPanel:
    """Figures, "Rebuild search index", and the two-step "Remove subject".

    Attributes:
        stats: HTML table of the figures; last_stats: the dict they came from.
        stats_button: reads the figures again; rebuild_button: rebuilds the index.
        subject: Text field, the custody reference to remove.
        remove_button: asks for confirmation; confirm_box: the question (hidden until asked),
        confirm_button, keep_button: its answers.
        last_rebuild, last_removal: what the workspace returned last, or None.
        runner: the task runner every action goes through.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.last_stats: dict | None = None
        self.last_rebuild: dict | None = None
        self.last_removal: dict | None = None
        self._pending_removal: str | None = None
        self._loaders: list[Callable[[], None]] = []

        self.stats = widgets.HTML()
        self.stats.add_class("wb-stats")
        self.stats_button = widgets.Button(description="Refresh figures", icon="refresh")
        self.stats_button.add_class("wb-stats-button")
        self.stats_button.on_click(status.guard("reading the gallery figures")(lambda _: self.refresh()))
        self.rebuild_button = widgets.Button(
            description="Rebuild search index",
            icon="cogs",
            layout=widgets.Layout(width="auto"),
            tooltip="index every face now in the gallery; removed faces leave the index",
        )
        self.rebuild_button.add_class("wb-rebuild")
        self.rebuild_button.on_click(status.guard("rebuilding the search index")(lambda _: self.rebuild()))

        self.subject = widgets.Text(description="Subject", placeholder="custody reference, e.g. DEMO-T1-3")
        self.subject.add_class("wb-remove-subject")
        self.subject.observe(lambda _: self.keep(), names="value")  # a question is about one id only
        self.remove_button = widgets.Button(
            description="Remove subject...", icon="trash", button_style="danger", layout=widgets.Layout(width="auto")
        )
        self.remove_button.add_class("wb-remove")
        self.remove_button.on_click(status.guard("removing a subject")(lambda _: self.ask_removal()))
        self.question = widgets.HTML()
        self.confirm_button = widgets.Button(
            description="Yes, remove", button_style="danger", icon="trash", layout=widgets.Layout(width="auto")
        )
        self.confirm_button.add_class("wb-remove-yes")
        self.confirm_button.on_click(status.guard("removing a subject")(lambda _: self.remove()))
        self.keep_button = widgets.Button(description="No, keep them", layout=widgets.Layout(width="auto"))
        self.keep_button.add_class("wb-remove-no")
        self.keep_button.on_click(status.guard("removing a subject")(lambda _: self.keep()))
        self.confirm_box = widgets.VBox(
            [self.question, widgets.HBox([self.confirm_button, self.keep_button])],
            layout=widgets.Layout(display="none", border="2px solid #e6a1a1", padding="6px", margin="4px 0"),
        )
        self.confirm_box.add_class("wb-remove-confirm")

        removal = widgets.VBox([
            widgets.HTML("<b>Remove a subject</b> (their custody images, faces and embeddings are deleted for good; audited)"),
            widgets.HBox([self.subject, self.remove_button]), self.confirm_box,
        ])  # fmt: skip
        self.widget = widgets.VBox([self.stats, widgets.HBox([self.stats_button, self.rebuild_button]), removal])
        self.widget.add_class("wb-gallery")

    @property
    def buttons(self) -> list[widgets.Button]:
        return [self.stats_button, self.rebuild_button, self.remove_button, self.confirm_button, self.keep_button]

    # -- figures -----------------------------------------------------------------------------------

    def also_load(self, loader: Callable[[], None]) -> None:
        """Call ``loader()`` whenever the figures are read (same thread): for parts of the page
        whose lists go stale with them, such as the audit panel's case list."""
        self._loaders.append(loader)

    def load(self) -> dict:
        """Read and show the figures now (in the caller's thread)."""
        for loader in self._loaders:
            loader()
        self.last_stats = self.ws.gallery_stats()
        self.stats.value = key_value_table(stats_rows(self.last_stats), css_class="wb-stats-table")
        return self.last_stats

    def refresh(self) -> bool:
        return self.runner.run(
            "reading the gallery figures",
            lambda progress, cancel: self.load(),
            lambda stats: self.status.info(f"The gallery holds {plural(stats['subjects'], 'subject')}."),
            disable=self.buttons,
            cancellable=False,
        )

    # -- index -------------------------------------------------------------------------------------

    def rebuild(self) -> bool:
        return self.runner.run(
            "rebuilding the search index",
            lambda progress, cancel: self.ws.rebuild_index(),
            self._rebuilt,
            disable=self.buttons,
            cancellable=False,
        )

    def _rebuilt(self, manifest: dict) -> None:
        self.last_rebuild = manifest
        self.load()
        if manifest.get("count"):
            self.status.success(
                f"Search index rebuilt: {plural(manifest['count'], 'face')} indexed in {manifest.get('build_seconds', 0):.1f} s."
            )
        else:
            self.status.success("The gallery is empty: the search index was cleared.")

    # -- removal -----------------------------------------------------------------------------------

    def ask_removal(self) -> None:
        """Show the confirmation for the subject in the field (nothing is removed yet)."""
        subject_id = self.subject.value.strip()
        if not subject_id:
            raise WorkbenchError("type the custody reference of the subject to remove")
        self._pending_removal = subject_id
        self.question.value = (
            f"<b>Remove subject {html.escape(subject_id)}?</b> Every custody image, face and embedding of theirs is deleted "
            "from the gallery for good; the removal is recorded in the audit log. Searches already recorded keep their "
            "candidate lists, without the pictures."
        )
        self.confirm_button.description = f"Yes, remove {subject_id}"
        self.confirm_box.layout.display = None
        self.status.warning(f"Confirm or cancel the removal of {subject_id} below.")

    def keep(self) -> None:
        """Withdraw the question (nothing removed)."""
        if self._pending_removal is not None:
            self._pending_removal = None
            self.confirm_box.layout.display = "none"
            self.status.info("Nothing removed.")

    def remove(self) -> bool:
        """Remove the subject asked about (after :meth:`ask_removal`), in the background."""
        subject_id = self._pending_removal
        if subject_id is None:
            raise WorkbenchError("click 'Remove subject...' first, then confirm")
        self._pending_removal = None
        self.confirm_box.layout.display = "none"
        return self.runner.run(
            f"removing subject {subject_id}",
            lambda progress, cancel: self.ws.remove_subject(subject_id),
            self._removed,
            disable=self.buttons,
            cancellable=False,
        )

    def _removed(self, result: dict) -> None:
        self.last_removal = result
        self.subject.value = ""
        self.load()
        self.status.success(
            f"Removed subject {result['subject_id']}: {plural(result['images'], 'image')}, {plural(result['faces'], 'face')}. "
            "Searches no longer find them. Rebuild the search index so that its copy of their embeddings is deleted too."
        )
