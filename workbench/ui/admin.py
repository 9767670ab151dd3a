"""The gallery administration dashboard, for technical staff.

Four parts, each a skin over workspace functions, sharing one status line and one task runner:

1. enrolment from a folder or a manifest CSV, with progress, Cancel, totals and a table of the
   rows not enrolled (:class:`~workbench.ui.enrol_panel.EnrolPanel`);
2. the gallery's figures, rebuilding the search index, removing a subject after a confirmation
   (:class:`~workbench.ui.gallery_panel.GalleryPanel`);
3. checking the audit log's hash chain and exporting it as CSV
   (:class:`~workbench.ui.audit_panel.AuditPanel`).

Use it in a notebook cell (Voila shows only the widgets)::

    from workbench.ui.admin import GalleryAdminApp
    GalleryAdminApp.from_environment()

CSS classes (stable, for browser tests): ``wb-admin`` (the app), ``wb-enrol-section``,
``wb-gallery-section``, ``wb-audit-section``; the parts add theirs (``wb-enrol``,
``wb-enrol-folder``, ``wb-enrol-manifest``, ``wb-enrol-button``, ``wb-enrol-counts``,
``wb-enrol-failures``, ``wb-gallery``, ``wb-stats``, ``wb-stats-button``, ``wb-rebuild``,
``wb-remove-subject``, ``wb-remove``, ``wb-remove-confirm``, ``wb-remove-yes``, ``wb-remove-no``,
``wb-audit``, ``wb-audit-verify``, ``wb-audit-result``, ``wb-audit-case``, ``wb-audit-export``,
``wb-download``); and the frame's ``wb-app``, ``wb-header``, ``wb-caveat``, ``wb-status``,
``wb-task``.
"""

from __future__ import annotations

from ..workspace import Workspace
from .audit_panel import AuditPanel
from .dashboard import Dashboard
from .enrol_panel import EnrolPanel
from .gallery_panel import GalleryPanel
from .layout import section


class GalleryAdminApp(Dashboard):
    """The gallery administration dashboard on one workspace (see the module docstring).

    Attributes:
        ws, status, runner, header, widget: see :class:`~workbench.ui.dashboard.Dashboard`.
        enrol: :class:`EnrolPanel`; gallery: :class:`GalleryPanel`; audit: :class:`AuditPanel`.

    Every part shares ``runner`` (``app.runner.wait()`` waits for the running action). The
    figures load in the background when the app is made.
    """

    title = "Gallery administration"
    purpose = "For technical staff: enrol custody images, keep the search index current, remove subjects, check and export the audit log."
    css_class = "wb-admin"

    def __init__(self, ws: Workspace):
        super().__init__(ws)
        self.enrol = EnrolPanel(ws, self.status, self.runner)
        self.gallery = GalleryPanel(ws, self.status, self.runner)
        self.audit = AuditPanel(ws, self.status, self.runner)
        self.enrol.on_done(lambda result: self.gallery.load())  # already in the runner's thread
        self.gallery.also_load(self.audit.load_cases)
        self._assemble(
            section("Enrol custody images", [self.enrol.widget], "wb-enrol-section"),
            section("Gallery", [self.gallery.widget], "wb-gallery-section"),
            section("Audit log", [self.audit.widget], "wb-audit-section"),
        )
        self.gallery.refresh()  # in the background, with the audit panel's case list
