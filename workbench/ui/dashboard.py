"""What every dashboard app has: a header, a status line, a task runner, and a way to be shown.

A dashboard app is a skin over one :class:`~workbench.workspace.Workspace`: it reads inputs, calls
one workspace function, shows the result. :class:`Dashboard` gives each app the same frame:

* a header naming the dashboard, the workspace folder and the person signed in, with the
  caveat that candidates are investigative leads, not identifications;
* one :class:`~workbench.ui.feedback.StatusLine` and one :class:`~workbench.ui.feedback.TaskRunner`
  shared by all its parts, so only one action runs at a time (the workspace has one database
  connection per store, and one action at a time is also what a person can follow);
* ``from_environment()`` (the workspace and user of the server, see :mod:`.session`), ``widget``,
  and display as the last expression of a notebook cell.

The page's look (sections, tables, the status line kept in view while scrolling) is the shared
style sheet of :mod:`.layout`, so every dashboard looks alike.

CSS classes (stable, for browser tests): ``wb-app`` (the whole app), ``wb-header``,
``wb-title``, ``wb-caveat``, ``wb-who`` (workspace and user line), ``wb-feedback`` (progress and
status), plus the status line's ``wb-status`` and the runner's ``wb-task``.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .layout import style_sheet

CAVEAT = (
    "Candidates are investigative leads for trained people to review, not identifications. "
    "No one is identified by this system: every decision is a person's, with a written reason, "
    "and a second, different person reviews it."
)


def header(ws: Workspace, title: str, purpose: str = "") -> widgets.HTML:
    """The header of a dashboard: title, what it is for, workspace and user, and the caveat."""
    who = f"Workspace <code>{html.escape(str(ws.home))}</code> &middot; signed in as <b>{html.escape(ws.user)}</b>"
    text = (
        f'<div class="wb-title" style="font-size:1.4em;font-weight:600;margin:4px 0">{html.escape(title)}</div>'
        + (f'<div style="margin:2px 0 6px 0">{html.escape(purpose)}</div>' if purpose else "")
        + f'<div class="wb-who" style="color:#333;margin:2px 0">{who}</div>'
        + f'<div class="wb-caveat" role="note" style="background:#fff6d6;border:1px solid #e6cf7a;border-radius:4px;'
        f'padding:6px 10px;margin:6px 0;color:#5c4400">{html.escape(CAVEAT)}</div>'
    )
    widget = widgets.HTML(text)
    widget.add_class("wb-header")
    return widget


class Dashboard:
    """Base of the dashboard apps: ``ws``, ``status``, ``runner``, ``header``, ``widget``.

    Subclasses set :attr:`title` and :attr:`purpose`, build their parts with ``self.status`` and
    ``self.runner``, and call :meth:`_assemble` with them.
    """

    title = "Workbench"
    purpose = ""
    css_class = "wb-app"

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.status = StatusLine()
        self.runner = TaskRunner(self.status)
        self.header = header(ws, self.title, self.purpose)
        self.widget: widgets.VBox = widgets.VBox()

    @classmethod
    def from_environment(cls, **kwargs):
        """The app on the workspace and for the person the dashboard server was started with."""
        from .session import open_workspace

        return cls(open_workspace(), **kwargs)

    def _assemble(self, *parts: widgets.Widget) -> None:
        feedback = widgets.VBox([self.status, self.runner.widget])
        feedback.add_class("wb-feedback")
        self.widget = widgets.VBox([style_sheet(), self.header, feedback, *parts])
        self.widget.add_class("wb-app")
        if self.css_class != "wb-app":
            self.widget.add_class(self.css_class)

    def _repr_mimebundle_(self, **kwargs):
        """Shown as its widget when it is the last expression of a notebook cell."""
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.ws!r})"
