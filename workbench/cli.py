"""The ``workbench`` command: a thin layer over the library.

Every command accepts ``--json`` and then prints exactly one JSON document on stdout. Errors
the user can fix print ``error: ...`` on stderr (and ``{"error": ...}`` on stdout with
``--json``) and exit with status 1; usage errors exit with 2 (argparse). The sub-commands live
in :mod:`workbench.commands`, one module per group.

No traceback, ever: a file-system error prints the path and the problem; anything else that
escapes the library prints ``error: internal error (<type>): <one line>; details in <log>``
and writes the traceback to ``<home>/logs/workbench.log`` (``--debug`` prints it instead). A
database failure (busy for too long, I/O, damage) prints its one line and also logs its
traceback, with the statement that failed.
Ctrl-C prints ``interrupted`` and exits with 130. Warnings from the library (a workspace
readable by others, damaged footage, an index not used) are printed once as ``warning: ...``.
Everything the command creates is owner-only (the process umask masks group and other bits).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib
import json
import logging
import os
import sqlite3
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from .commands import COMMAND_MODULES, EXIT_ERROR, EXIT_OK
from .config import DEFAULT_HOME, Settings
from .errors import WorkbenchError
from .fileio import open_private, os_error_message
from .workspace import Workspace


class Output:
    """Prints one JSON document (``--json``) or human-readable lines."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def emit(self, data: dict, lines: list[str] | str = ()) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2, default=str))
        else:
            # Text from the records (case references, file names) may hold control characters:
            # shown as escapes, never sent raw to the terminal.
            print(_printable(lines if isinstance(lines, str) else "\n".join(lines)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Retrospective facial recognition workbench")
    parser.add_argument("--home", help="workspace folder (default: $WORKBENCH_HOME or ./workspace)")
    parser.add_argument(
        "--user", help="act as this user (default: $WORKBENCH_USER, else your login name); honoured only where an administrator allows it"
    )
    parser.add_argument("--pack", help="model pack to use (default: settings, normally opencv-zoo)")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of internal errors and debug messages on stderr")
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


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:  # no passwd entry and no LOGNAME/USER: say so
        raise WorkbenchError("cannot tell who you are (no login name); set WORKBENCH_USER or give --user") from exc


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(getattr(args, "json", False))
    debug = bool(getattr(args, "debug", False))
    previous_umask = os.umask(0o077)
    os.umask(previous_umask | 0o077)  # everything this command creates is owner-only
    try:
        with _cli_messages(debug):
            try:
                with Workspace(settings_from_args(args), authenticated_as=_login_name()) as workspace:
                    return args.func(args, workspace, out)
            except WorkbenchError as exc:
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    # A database failure (busy for too long, I/O, damage) is not the user's input:
                    # the one line below says what to do, the log keeps the traceback and statement.
                    _log_internal_error(args, argv, debug)
                return _fail(out, str(exc), type(exc).__name__)
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                return 130
            except BrokenPipeError:
                # the reader (``| head``) went away: not an error of ours; silence the flush at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_OK
            except OSError as exc:
                return _fail(out, os_error_message(exc), type(exc).__name__)
            except Exception as exc:  # the last line of defence: one line here, the traceback in the log
                where = _log_internal_error(args, argv, debug)
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                details = f"details in {where}" if where else "run again with --debug for details"
                return _fail(out, f"internal error ({type(exc).__name__}): {first}; {details}", "InternalError")
    finally:
        os.umask(previous_umask)


def _printable(text: str) -> str:
    """Text safe for a terminal: control characters (except newlines) shown as escapes."""
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def _fail(out: Output, message: str, kind: str) -> int:
    if out.as_json:
        print(json.dumps({"error": message, "type": kind}))
    print(f"error: {_printable(message)}", file=sys.stderr)
    return EXIT_ERROR


def _log_internal_error(args, argv, debug: bool) -> Path | None:
    """Write the current traceback to ``<home>/logs/workbench.log`` (or stderr with ``--debug``);
    the log file's path, or None when it could not be written."""
    text = traceback.format_exc()
    if debug:
        print(text, file=sys.stderr, end="")
        return None
    home = args.home if getattr(args, "home", None) else os.environ.get("WORKBENCH_HOME") or str(DEFAULT_HOME)
    if not str(home).strip() or not Path(home).is_dir():
        return None
    path = Path(home) / "logs" / "workbench.log"
    try:
        with open_private(path, "a", encoding="utf-8") as handle:
            command = " ".join(sys.argv[:1] + list(argv if argv is not None else sys.argv[1:]))
            handle.write(f"--- {datetime.now(UTC).isoformat(timespec='seconds')} {command}\n{text}\n")
    except OSError:
        return None
    return path


class _OnceHandler(logging.Handler):
    """Prints the library's warnings (and errors) as ``warning: ...`` lines on stderr, each once."""

    def __init__(self, seen: set[str], debug: bool):
        super().__init__(logging.DEBUG if debug else logging.WARNING)
        self.seen = seen

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not become a traceback
            message = str(record.msg)
        if record.levelno >= logging.WARNING:
            if message in self.seen:
                return
            self.seen.add(message)
            prefix = "warning"
        else:
            prefix = f"debug: {record.name}"
        print(f"{prefix}: {_printable(message)}", file=sys.stderr)


@contextlib.contextmanager
def _cli_messages(debug: bool) -> Iterator[None]:
    """Library log messages and Python warnings as one-line ``warning: ...`` on stderr, once each."""
    seen: set[str] = set()
    handler = _OnceHandler(seen, debug)
    logger = logging.getLogger("workbench")
    saved_level = logger.level
    logger.addHandler(handler)
    if debug:
        logger.setLevel(logging.DEBUG)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if text not in seen:
            seen.add(text)
            print(f"warning: {_printable(text)}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved_level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
