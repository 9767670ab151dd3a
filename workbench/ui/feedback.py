"""Feedback every dashboard action gives: a status line, a guard for callbacks, and a task runner
that does long work off the kernel's main thread with a progress bar and a Cancel button.

Why a guard: an exception in an ipywidgets callback vanishes into the kernel log, and a
traceback in the page means nothing to an analyst. Every callback goes through
:func:`StatusLine.guard`: a :class:`~workbench.errors.WorkbenchError` (bad input the user can
fix) is shown as its plain message; anything else as "something went wrong" with the error's
one-line summary, and the traceback goes to the log. The kernel keeps running either way.

Why a thread: the kernel handles widget messages on its main thread; work done there freezes
the page (no progress, no Cancel). :class:`TaskRunner` runs one action at a time in a daemon
thread, disables the buttons that would start another, updates the progress bar from the
``progress(done, total)`` callbacks the library calls, and sets the ``cancel`` event when the
analyst clicks Cancel. Widgets are updated from that thread, which ipywidgets 8 supports (each
update is one comm message).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ..errors import WorkbenchError

log = logging.getLogger("workbench.ui")

#: shortest time between two progress-bar updates sent to the page, seconds.
PROGRESS_INTERVAL_S = 0.5

#: colours of the status line: (text, background, border).
_STYLES = {
    "info": ("#1a3d5c", "#eaf2fb", "#9cc3e6"),
    "success": ("#1d4d2b", "#e9f6ec", "#9fd3ac"),
    "warning": ("#5c4400", "#fff6d6", "#e6cf7a"),
    "error": ("#6b1111", "#fdecec", "#e6a1a1"),
}


def plain_message(exc: BaseException) -> str:
    """What a person is told about an error: our own errors as written, others in one line."""
    if isinstance(exc, WorkbenchError):
        return str(exc)
    summary = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"Something went wrong ({type(exc).__name__}{': ' + summary if summary else ''}). The details are in the workbench log."


class StatusLine(widgets.HTML):
    """One visible line that says what just happened: info, success, warning or error."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_class("wb-status")
        self.kind = "info"
        self.message = ""

    def show(self, message: str, kind: str = "info") -> None:
        fg, bg, border = _STYLES[kind]
        self.kind, self.message = kind, message
        self.value = (
            f'<div class="wb-status-{kind}" role="status" style="color:{fg};background:{bg};border:1px solid {border};'
            f'border-radius:4px;padding:6px 10px;margin:4px 0;white-space:pre-wrap">{html.escape(message)}</div>'
        )

    def info(self, message: str) -> None:
        self.show(message, "info")

    def success(self, message: str) -> None:
        self.show(message, "success")

    def warning(self, message: str) -> None:
        self.show(message, "warning")

    def error(self, message: str) -> None:
        self.show(message, "error")

    def clear(self) -> None:
        self.kind, self.message, self.value = "info", "", ""

    def report(self, exc: BaseException, doing: str = "") -> None:
        """Show an error plainly and log it (with the traceback when it is not one of ours)."""
        message = plain_message(exc)
        if isinstance(exc, WorkbenchError):
            log.warning("%s: %s", doing or "action", exc)
        else:
            log.error("%s failed", doing or "action", exc_info=exc)
        self.error(f"{doing}: {message}" if doing else message)

    def guard(self, doing: str) -> Callable[[Callable], Callable]:
        """Decorator for widget callbacks: errors go to this line and the log, never lost."""

        def wrap(func: Callable) -> Callable:
            def guarded(*args, **kwargs):
                try:
                    return func(*args, **kwargs)
                except Exception as exc:  # the page must survive anything a callback meets
                    self.report(exc, doing)
                    return None

            guarded.__name__ = getattr(func, "__name__", "callback")
            guarded.__doc__ = func.__doc__
            return guarded

        return wrap


class TaskRunner:
    """Runs one long action at a time off the main thread, with progress and Cancel.

    Args:
        status: where results and errors are shown.
        background: False runs work in the caller's thread (for code that must not use threads).

    ``widget`` holds the progress bar, its label and the Cancel button; it is hidden while idle.
    """

    def __init__(self, status: StatusLine, *, background: bool = True):
        self.status = status
        self.background = background
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="320px"))
        self.label = widgets.Label()
        self.cancel_button = widgets.Button(
            description="Cancel", button_style="warning", tooltip="stop this action; what was done so far is kept"
        )
        self.cancel_button.on_click(lambda _: self.cancel())
        self.widget = widgets.HBox(
            [self.progress, self.label, self.cancel_button], layout=widgets.Layout(display="none", align_items="center")
        )
        self.widget.add_class("wb-task")
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._disabled: list[widgets.Widget] = []
        self.last_error: BaseException | None = None
        self.last_result: Any = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel.set()
        self.label.value = "cancelling..."
        self.cancel_button.disabled = True

    def run(
        self,
        doing: str,
        work: Callable[[Callable[[float, float], None], threading.Event], Any],
        on_done: Callable[[Any], None] | None = None,
        *,
        disable: Sequence[widgets.Widget] = (),
        cancellable: bool = True,
    ) -> bool:
        """Start ``work(progress, cancel)``; then ``on_done(result)``, both guarded.

        Returns False (and says so) when another action is still running.
        """
        if self.busy:
            self.status.warning(f"please wait: {self.label.value or 'another action is running'}")
            return False
        self._cancel = threading.Event()
        self.last_error, self.last_result = None, None
        self._disabled = [w for w in disable if not getattr(w, "disabled", True)]
        for w in self._disabled:
            w.disabled = True
        self.progress.value, self.progress.bar_style = 0.0, "info"
        self.label.value = f"{doing}..."
        self.cancel_button.disabled = not cancellable
        self.cancel_button.layout.display = None if cancellable else "none"
        self.widget.layout.display = None
        self.status.info(f"{doing}...")
        started = time.monotonic()

        last_shown = [0.0]

        def progress(done: float, total: float) -> None:
            # Every update is a message to the page and a repaint there: a few a second are
            # enough to see progress, and the browser then leaves the CPU to the work.
            now = time.monotonic()
            if total and total > 0 and (now - last_shown[0] >= PROGRESS_INTERVAL_S or done >= total):
                last_shown[0] = now
                self.progress.value = max(0.0, min(1.0, float(done) / float(total)))
                self.label.value = f"{doing}: {100 * self.progress.value:.0f}%"

        def body() -> None:
            try:
                result = work(progress, self._cancel)
                self.last_result = result
                if on_done is not None:
                    on_done(result)
                elif self.status.kind == "info":
                    self.status.success(f"{doing}: done in {time.monotonic() - started:.1f} s")
            except Exception as exc:
                self.last_error = exc
                self.status.report(exc, doing)
            finally:
                for w in self._disabled:
                    w.disabled = False
                self._disabled = []
                self.widget.layout.display = "none"

        if self.background:
            self._thread = threading.Thread(target=body, name=f"workbench-ui: {doing}", daemon=True)
            self._thread.start()
        else:
            body()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running action ends (tests, notebooks); True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy
