"""``workbench users list | set NAME --role R... | deactivate NAME | allow-declared on|off``.

Administrators only. Until the first user is set, everyone who can open the workspace holds
every role (team mode); from then on roles apply as assigned (see :mod:`workbench.access`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import EXIT_OK

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def _line(user) -> str:
    roles = ", ".join(sorted(r.value for r in user.roles)) or "no role"
    return f"{user.name:<24} {roles}" + ("" if user.active else "   (deactivated)")


def cmd_users_list(args, ws: Workspace, out: Output) -> int:
    users = ws.users()
    mode = "roles as assigned" if ws.access.roles_assigned else "team mode: everyone holds every role until a user is set"
    out.emit(
        {"users": [u.as_dict() for u in users], "owner": ws.access.owner, "roles_assigned": ws.access.roles_assigned},
        [f"owner {ws.access.owner}; {mode}"] + [_line(u) for u in users],
    )
    return EXIT_OK


def cmd_users_set(args, ws: Workspace, out: Output) -> int:
    user = ws.set_user(args.name, args.role)
    out.emit({"user": user.as_dict()}, f"{_line(user)}  (recorded in the audit log)")
    return EXIT_OK


def cmd_users_deactivate(args, ws: Workspace, out: Output) -> int:
    user = ws.deactivate_user(args.name)
    out.emit({"user": user.as_dict()}, f"{user.name} holds no role any more (their past decisions keep their name)")
    return EXIT_OK


def cmd_users_allow_declared(args, ws: Workspace, out: Output) -> int:
    allowed = args.state == "on"
    ws.allow_declared_users(allowed)
    out.emit({"declared_users": allowed}, f"declared user names (--user) are {'honoured' if allowed else 'refused'} in this workspace")
    return EXIT_OK


def register(commands, add) -> None:
    users = commands.add_parser("users", help="users and roles (administrators)").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    add(users, "list", cmd_users_list, "users, their roles, and whether roles apply as assigned")
    p = add(users, "set", cmd_users_set, "add a user or replace their roles")
    p.add_argument("name")
    p.add_argument("--role", action="append", required=True, choices=["analyst", "reviewer", "technical", "administrator", "auditor"])
    p = add(users, "deactivate", cmd_users_deactivate, "take every role from a user")
    p.add_argument("name")
    p = add(users, "allow-declared", cmd_users_allow_declared, "honour --user names that differ from your login (demos, tests)")
    p.add_argument("state", choices=["on", "off"])
