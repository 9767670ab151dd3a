"""Sub-commands of ``workbench``: one module per command group, each with ``register(commands, add)``.

``add(subparsers, name, func, help)`` creates a sub-command with ``--json`` and binds ``func``;
``func(args, workspace, out)`` returns the exit status: commands are thin callers of
:class:`~workbench.workspace.Workspace`, so the CLI and the dashboards record work alike. Add a module here to add a group.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

EXIT_OK, EXIT_ERROR = 0, 1

#: largest record number SQLite stores (a signed 64-bit integer).
RECORD_ID_MAX = 2**63 - 1


def record_id(text: str) -> int:
    """argparse type of a record number (a search id): a whole number from 1 to 2**63 - 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a record number (a whole number such as 12)") from None
    if not 1 <= value <= RECORD_ID_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a record number (1 or more)")
    return value

#: modules under workbench/commands, in the order they appear in ``workbench --help``.
COMMAND_MODULES = [
    "models", "faces", "evaluate", "gallery", "footage", "search", "cases", "threshold", "users", "retention", "settings", "serve",
    "demo",
]  # fmt: skip


@contextlib.contextmanager
def progress_bar(desc: str, unit: str, *, enabled: bool = True) -> Iterator[Callable[[float, float], None] | None]:
    """A ``progress(done, total)`` callback drawn as a tqdm bar on stderr (None when disabled,
    e.g. with ``--json``). The library reports progress through callbacks and never draws."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit=unit, file=sys.stderr, delay=2.0, dynamic_ncols=True)

    def update(done: float, total: float) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
