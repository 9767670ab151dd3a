"""Who may do what in a workspace: users, roles and the check every public operation makes.

Policy:

* The user who first opens a workspace is its **owner** and holds every role, so a single-user
  installation and the demo work out of the box.
* Until an administrator adds another user, the workspace is in **team mode**: everyone who can
  open it (the operating system already limits that to the folder's owner) holds every role.
  Once an administrator has added a user, roles apply **as assigned**: a user who is not listed,
  or was deactivated, holds none.
* Every action names the roles that may take it (:data:`ACTIONS`). A refusal raises
  :class:`~workbench.errors.AccessError` naming the user, the action and the roles needed, and
  is written to the audit log (``access.refused``) before it is raised.
* Identity is the authenticated one (JupyterHub's user for dashboards, the operating-system user
  for the CLI). A different *declared* name (``--user``, ``WORKBENCH_USER``) is honoured only
  where declared names are allowed (setting ``declared_users``, or ``workbench users
  allow-declared on`` for one workspace); the audit log then records both names.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from . import audit
from .db import utc_now
from .errors import AccessError
from .types import Role, parse_choice

A, R, T, ADM, AUD = Role.ANALYST, Role.REVIEWER, Role.TECHNICAL, Role.ADMINISTRATOR, Role.AUDITOR

#: action -> (what it does, in words for the refusal, roles that may take it).
ACTIONS: dict[str, tuple[str, frozenset[Role]]] = {
    "case.read": ("read cases, searches and decisions", frozenset({A, R, T, ADM, AUD})),
    "case.new": ("open a case", frozenset({A})),
    "case.status": ("close or reopen a case", frozenset({A, ADM})),
    "case.archive": ("archive a case", frozenset({ADM})),
    "footage.extract": ("extract faces from footage", frozenset({A})),
    "upload": ("upload footage or stills", frozenset({A})),
    "search.run": ("search faces against the gallery", frozenset({A})),
    "search.replay": ("replay a recorded search", frozenset({A, R, AUD})),
    "review.first": ("record a first verdict", frozenset({A})),
    "review.second": ("record a second verdict", frozenset({R})),
    "report.export": ("export a case report", frozenset({R, AUD, ADM})),
    "gallery.read": ("read gallery statistics and custody pictures", frozenset({A, R, T, ADM, AUD})),
    "gallery.enrol": ("enrol custody images", frozenset({T})),
    "gallery.rebuild": ("rebuild the gallery index", frozenset({T})),
    "gallery.remove": ("remove a custody record", frozenset({ADM})),
    "evaluate": ("evaluate accuracy on labelled images", frozenset({T})),
    "settings.change": ("change workspace settings", frozenset({T, ADM})),
    "models.import": ("import a model pack", frozenset({ADM})),
    "users.manage": ("manage users and roles", frozenset({ADM})),
    "retention": ("apply the retention rule (archive closed cases, purge old biometric data)", frozenset({ADM})),
    "audit.read": ("verify or export the audit log", frozenset({AUD, ADM, T})),
}

_OWNER, _ASSIGNED, _DECLARED = "owner", "roles_assigned", "declared_users"


@dataclass(frozen=True)
class User:
    """A person known to the workspace, with their roles."""

    name: str
    roles: frozenset[Role]
    active: bool
    added_utc: str
    added_by: str

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "roles": sorted(r.value for r in self.roles),
            "active": self.active,
            "added_utc": self.added_utc,
            "added_by": self.added_by,
        }


def parse_roles(values) -> frozenset[Role]:
    roles = frozenset(parse_choice(Role, v, "role") for v in values)
    if not roles:
        raise AccessError("give at least one role (analyst, reviewer, technical, administrator, auditor)")
    return roles


class AccessControl:
    """Users and roles of one workspace database, and the checks.

    Args:
        conn: the workspace database connection.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    # -- facts ------------------------------------------------------------------------------------

    def _fact(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM workspace_facts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_fact(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO workspace_facts (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value)
        )

    @property
    def owner(self) -> str | None:
        return self._fact(_OWNER)

    @property
    def roles_assigned(self) -> bool:
        """True once an administrator has added a user: roles then apply as assigned."""
        return self._fact(_ASSIGNED) == "1"

    @property
    def declared_users_allowed(self) -> bool:
        return self._fact(_DECLARED) == "1"

    def claim(self, user: str) -> None:
        """Make ``user`` the owner with every role if the workspace has none yet (first open)."""
        if self.owner is not None:
            return
        with audit.transaction(self.conn):
            if self._fact(_OWNER) is not None:  # another process claimed it first
                return
            self._set_fact(_OWNER, user)
            self._insert_user(user, frozenset(Role), by=user)
            audit.append(
                self.conn,
                user=user,
                action="users.owner",
                details={"owner": user, "roles": sorted(r.value for r in Role)},
                covers={"user": [user], "fact": [_OWNER]},
            )

    # -- users ------------------------------------------------------------------------------------

    def users(self) -> list[User]:
        return [_user(r) for r in self.conn.execute("SELECT * FROM users ORDER BY name")]

    def user(self, name: str) -> User | None:
        row = self.conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def roles_of(self, name: str) -> frozenset[Role]:
        """The roles ``name`` holds now (see the module docstring for team mode)."""
        if not self.roles_assigned:
            return frozenset(Role)
        found = self.user(name)
        return found.roles if found is not None and found.active else frozenset()

    def _insert_user(self, name: str, roles: frozenset[Role], *, by: str) -> None:
        self.conn.execute(
            "INSERT INTO users (name, roles, active, added_utc, added_by) VALUES (?, ?, 1, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET roles = excluded.roles, active = 1",
            (name, json.dumps(sorted(r.value for r in roles)), utc_now(), by),
        )

    def set_user(self, by: str, name: str, roles) -> User:
        """Add a user or replace their roles (administrators only; audited). From then on roles
        apply as assigned."""
        self.require(by, "users.manage")
        name = validate_user_name(name)
        roles = parse_roles(roles)
        with audit.transaction(self.conn):
            self._insert_user(name, roles, by=by)
            self._set_fact(_ASSIGNED, "1")
            details = {"name": name, "roles": sorted(r.value for r in roles)}
            audit.append(self.conn, user=by, action="users.set", details=details, covers={"user": [name], "fact": [_ASSIGNED]})
        return self.user(name)

    def deactivate(self, by: str, name: str) -> User:
        """Take every role from a user; the record stays (their past decisions name them)."""
        self.require(by, "users.manage")
        if self.user(name) is None:
            raise AccessError(f"no user {name!r} in this workspace")
        if name == by:
            raise AccessError(f"{by} cannot deactivate themselves: another administrator must")
        with audit.transaction(self.conn):
            self.conn.execute("UPDATE users SET active = 0 WHERE name = ?", (name,))
            self._set_fact(_ASSIGNED, "1")
            audit.append(
                self.conn, user=by, action="users.deactivate", details={"name": name}, covers={"user": [name], "fact": [_ASSIGNED]}
            )
        return self.user(name)

    def allow_declared(self, by: str, allowed: bool) -> None:
        """Honour declared user names in this workspace (demos, tests) or stop doing so."""
        self.require(by, "users.manage")
        with audit.transaction(self.conn):
            self._set_fact(_DECLARED, "1" if allowed else "0")
            audit.append(
                self.conn, user=by, action="users.allow_declared", details={"allowed": bool(allowed)}, covers={"fact": [_DECLARED]}
            )

    # -- checks -----------------------------------------------------------------------------------

    def require(self, user: str, action: str) -> None:
        """Raise AccessError (and audit the refusal) unless ``user`` may take ``action``."""
        what, allowed = ACTIONS[action]
        held = self.roles_of(user)
        if held & allowed:
            return
        needed = " or ".join(sorted(r.value for r in allowed))
        holds = ", ".join(sorted(r.value for r in held)) or "no role"
        with audit.transaction(self.conn):
            audit.append(
                self.conn,
                user=user,
                action="access.refused",
                details={"action": action, "needed": sorted(r.value for r in allowed), "held": sorted(r.value for r in held)},
            )
        raise AccessError(f"{user} may not {what} ({action}): it needs the {needed} role; {user} holds {holds}")


def validate_user_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64 or any(not c.isprintable() for c in name):
        raise AccessError(f"a user name must be 1 to 64 printable characters, got {name!r}")
    return name


def _user(row) -> User:
    roles = frozenset(Role(r) for r in json.loads(row["roles"]))
    return User(row["name"], roles, bool(row["active"]), row["added_utc"], row["added_by"])
