"""``workbench settings show | set NAME VALUE``: the workspace settings, changes audited."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from . import EXIT_OK

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_settings_show(args, ws: Workspace, out: Output) -> int:
    values = {f.name: getattr(ws.settings, f.name) for f in dataclasses.fields(ws.settings)}
    out.emit({k: str(v) if k == "home" else v for k, v in values.items()}, [f"{k:<22} {v}" for k, v in values.items()])
    return EXIT_OK


def cmd_settings_set(args, ws: Workspace, out: Output) -> int:
    from ..settings_file import set_setting

    ws.require("settings.change")

    old, new = set_setting(ws.settings, args.name, args.value)
    out.emit({"setting": args.name, "old": old, "new": new}, f"{args.name}: {old} -> {new} (recorded in the audit log)")
    return EXIT_OK


def register(commands, add) -> None:
    group = commands.add_parser("settings", help="workspace settings").add_subparsers(
        dest="settings_command", required=True, metavar="ACTION"
    )
    add(group, "show", cmd_settings_show, "every setting with its current value")
    p = add(group, "set", cmd_settings_set, "store a setting in workbench.toml (audited); 'none' clears an optional one")
    p.add_argument("name")
    p.add_argument("value")
