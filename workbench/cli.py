"""The ``workbench`` command: a thin layer over the library.

Every command accepts ``--json`` and then prints exactly one JSON document on stdout. Errors
the user can fix print ``error: ...`` on stderr (and ``{"error": ...}`` on stdout with
``--json``) and exit with status 1; usage errors exit with 2 (argparse). The sub-commands live
in :mod:`workbench.commands`, one module per group.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import os
import sys
from collections.abc import Callable

from .commands import COMMAND_MODULES, EXIT_ERROR, EXIT_OK
from .config import Settings
from .errors import WorkbenchError
from .workspace import Workspace


class Output:
    """Prints one JSON document (``--json``) or human-readable lines."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def emit(self, data: dict, lines: list[str] | str = ()) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2, default=str))
        else:
            print(lines if isinstance(lines, str) else "\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Retrospective facial recognition workbench")
    parser.add_argument("--home", help="workspace folder (default: $WORKBENCH_HOME or ./workspace)")
    parser.add_argument(
        "--user", help="act as this user (default: $WORKBENCH_USER, else your login name); honoured only where an administrator allows it"
    )
    parser.add_argument("--pack", help="model pack to use (default: settings, normally opencv-zoo)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(sub, name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON document")
        p.set_defaults(func=func)
        return p

    for module in COMMAND_MODULES:
        importlib.import_module(f".commands.{module}", __package__).register(commands, add)
    return parser


def settings_from_args(args) -> Settings:
    user = args.user or os.environ.get("WORKBENCH_USER") or getpass.getuser()
    return Settings.load(args.home, user=user, pack=args.pack)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(getattr(args, "json", False))
    try:
        with Workspace(settings_from_args(args), authenticated_as=getpass.getuser()) as workspace:
            return args.func(args, workspace, out)
    except WorkbenchError as exc:
        if out.as_json:
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (``| head``) went away: not an error of ours; silence the flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
