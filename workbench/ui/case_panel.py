"""Open or create the case every search runs in: a skin over ``Workspace.open_case`` / ``new_case``.

Nothing else on the analyst's page works until a case is open (the library refuses a search
outside an open case too; the page just says so earlier). Open cases are offered in a list;
choosing one fills in the reference.

CSS classes: ``wb-case-panel`` (the section), ``wb-case-choice`` (list of open cases),
``wb-case-ref``, ``wb-case-offence``, ``wb-case-purpose``, ``wb-case-officer`` (the fields),
``wb-open-case`` ("Open case"), ``wb-new-case`` ("Create new case"), ``wb-case-summary`` (the
case now open).
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from ..errors import WorkbenchError
from ..types import Case, CaseStatus
from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .layout import hint, section

_FIELD = widgets.Layout(width="460px")
_STYLE = {"description_width": "150px"}


class CasePanel:
    """Open an existing case or create a new one.

    Attributes:
        existing: dropdown of the workspace's open cases (choosing one fills ``reference``).
        reference, offence, purpose, officer: the case's fields (only ``reference`` to open).
        open_button: opens the case named in ``reference``.
        create_button: creates a new case from all the fields.
        summary: what case is open now.
        case: the open :class:`~workbench.types.Case`, or None.
        runner: the task runner the actions run through (tests ``.wait()`` on it).
        widget: the section to display.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.case: Case | None = None
        self._refreshing = False
        self._listeners: list[Callable[[Case], None]] = []

        self.existing = widgets.Dropdown(description="Open cases", options=[], value=None, layout=_FIELD, style=_STYLE)
        self.existing.add_class("wb-case-choice")
        self.reference = widgets.Text(description="Case reference", placeholder="e.g. OP-2024-117", layout=_FIELD, style=_STYLE)
        self.reference.add_class("wb-case-ref")
        self.offence = widgets.Text(description="Offence", placeholder="new case only", layout=_FIELD, style=_STYLE)
        self.offence.add_class("wb-case-offence")
        self.purpose = widgets.Textarea(
            description="Why search faces",
            placeholder="new case only: why a face search is necessary",
            layout=widgets.Layout(width="460px", height="60px"),
            style=_STYLE,
        )
        self.purpose.add_class("wb-case-purpose")
        self.officer = widgets.Text(description="Officer in charge", placeholder="new case only", layout=_FIELD, style=_STYLE)
        self.officer.add_class("wb-case-officer")
        self.open_button = widgets.Button(description="Open case", button_style="primary", tooltip="open the case named above")
        self.open_button.add_class("wb-open-case")
        self.create_button = widgets.Button(
            description="Create new case", tooltip="create a case from the reference, offence, purpose and officer"
        )
        self.create_button.add_class("wb-new-case")
        self.summary = widgets.HTML('<span class="wb-hint">No case is open yet: open or create one to start.</span>')
        self.summary.add_class("wb-case-summary")

        self.existing.observe(status.guard("Choosing a case")(self._chosen), names="value")
        self.open_button.on_click(status.guard("Opening the case")(self._open_clicked))
        self.create_button.on_click(status.guard("Creating the case")(self._create_clicked))

        self.widget = section(
            "1. Case",
            [
                self.existing,
                self.reference,
                widgets.HBox([self.open_button]),
                hint("A new case needs a reference, the offence and why a face search is necessary."),
                self.offence,
                self.purpose,
                self.officer,
                widgets.HBox([self.create_button]),
                self.summary,
            ],
            "wb-case-panel",
        )
        status.guard("Listing the open cases")(self.refresh_list)()

    # -- what others listen to ------------------------------------------------------------------

    def on_open(self, callback: Callable[[Case], None]) -> None:
        """Call ``callback(case)`` (in the runner's thread) whenever a case is opened."""
        self._listeners.append(callback)

    @property
    def buttons(self) -> list[widgets.Widget]:
        return [self.open_button, self.create_button, self.existing]

    # -- actions --------------------------------------------------------------------------------

    def refresh_list(self) -> None:
        """Offer the workspace's open cases (newest last, as the store lists them)."""
        cases = self.ws.list_cases(CaseStatus.OPEN)
        current = self.case.reference if self.case is not None else self.existing.value
        # Setting options selects the first one; that must not overwrite the reference typed.
        self._refreshing = True
        try:
            self.existing.options = [(f"{c.reference} - {c.offence}", c.reference) for c in cases]
            self.existing.value = current if current in {c.reference for c in cases} else None
        finally:
            self._refreshing = False

    def _chosen(self, change) -> None:
        if change["new"] and not self._refreshing:
            self.reference.value = change["new"]

    def _reference(self) -> str:
        reference = self.reference.value.strip()
        if not reference:
            raise WorkbenchError("type a case reference (or choose an open case from the list)")
        return reference

    def _open_clicked(self, _button=None) -> None:
        reference = self._reference()
        self.runner.run(
            f"Opening case {reference}",
            lambda progress, cancel: self.ws.open_case(reference),
            self._opened,
            disable=self.buttons,
            cancellable=False,
        )

    def _create_clicked(self, _button=None) -> None:
        reference = self._reference()
        offence, purpose, officer = self.offence.value.strip(), self.purpose.value.strip(), self.officer.value.strip() or None
        if not offence or not purpose:
            raise WorkbenchError("a new case needs the offence and why a face search is necessary")

        def work(progress, cancel) -> Case:
            return self.ws.new_case(reference, offence=offence, purpose=purpose, officer=officer)

        self.runner.run(f"Creating case {reference}", work, self._opened, disable=self.buttons, cancellable=False)

    def _opened(self, case: Case) -> None:
        self.case = case
        self.refresh_list()
        officer = f", officer {case.officer}" if case.officer else ""
        self.summary.value = (
            f"<b>Case open: {html.escape(case.reference)}</b> ({html.escape(case.offence)}{html.escape(officer)})<br>"
            f'<span class="wb-hint">Purpose: {html.escape(case.purpose)}</span>'
        )
        for callback in self._listeners:
            callback(case)
        self.status.success(f"Case {case.reference} is open: load footage next.")
