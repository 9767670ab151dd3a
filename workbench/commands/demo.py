"""``workbench demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..cli import Output
    from ..config import Settings


def cmd_demo(args, settings: Settings, out: Output) -> int:
    from ..demo import run_demo

    return run_demo(settings, out)


def register(commands, add) -> None:
    add(commands, "demo", cmd_demo, "run the library on images shipped with installed packages")
