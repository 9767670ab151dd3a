"""Changing ``<home>/workbench.toml`` from the workbench, validated and audited.

Thresholds and index parameters change what analysts see, so a change goes through here: the
new value is checked by :class:`~workbench.config.Settings`, the file is rewritten atomically,
and the audit log records who changed what from which value to which.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from . import audit
from .config import AUDIT_OUTSIDE_WORKSPACE, SETTINGS_FILE, Settings, _coerce
from .db import connect
from .errors import ConfigError
from .fileio import atomic_write

#: settings that are not stored in the file (they come from the command line per run).
NOT_IN_FILE = frozenset({"home", "user"})
#: settings that must never come from the workspace's own file (see workbench.config).
NOT_IN_WORKSPACE_FILE = frozenset(AUDIT_OUTSIDE_WORKSPACE)


def set_setting(settings: Settings, name: str, raw_value: str) -> tuple[object, object]:
    """Store ``name = raw_value`` in the workspace's workbench.toml; returns (old, new).

    ``raw_value`` "none" clears an optional setting back to its default.

    Raises:
        ConfigError: unknown setting, a value of the wrong type or out of range.
    """
    if name in NOT_IN_FILE:
        raise ConfigError(f"setting {name} is given per run (--{name}), not stored in {SETTINGS_FILE}")
    if name in NOT_IN_WORKSPACE_FILE:
        raise ConfigError(
            f"setting {name} cannot be stored in the workspace's own {SETTINGS_FILE} (it checks the workspace); "
            f"set WORKBENCH_{name.upper()} instead"
        )
    new = _coerce(name, raw_value, source=f"value for {name}")
    old = getattr(settings, name)
    settings.replace(**{name: new})  # validates the range
    path = settings.home / SETTINGS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot be read to change it ({exc}); fix or remove the file first") from exc
    if new is None or new == ():
        data.pop(name, None)
    elif isinstance(new, tuple):
        data[name] = [str(p) for p in new]
    else:
        data[name] = str(new) if isinstance(new, Path) else new
    conn = connect(settings.db_path)
    try:
        with audit.transaction(conn):
            atomic_write(path, tomli_w.dumps(data).encode())  # owner-only, like everything in the workspace
            audit.append(
                conn,
                user=settings.user,
                action="settings.change",
                details={"setting": name, "old": _plain(old), "new": _plain(new), "file": str(path)},
            )
    finally:
        conn.close()
    return old, new


def _plain(value: object) -> object:
    """A setting's value as the audit log stores it (paths as text, lists of paths as lists)."""
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return value
