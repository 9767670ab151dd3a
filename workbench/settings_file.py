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
from .config import SETTINGS_FILE, Settings, _coerce
from .db import connect, transaction
from .errors import ConfigError
from .fileio import atomic_write

#: settings that are not stored in the file (they come from the command line per run).
NOT_IN_FILE = frozenset({"home", "user"})


def set_setting(settings: Settings, name: str, raw_value: str) -> tuple[object, object]:
    """Store ``name = raw_value`` in the workspace's workbench.toml; returns (old, new).

    ``raw_value`` "none" clears an optional setting back to its default.

    Raises:
        ConfigError: unknown setting, a value of the wrong type or out of range.
    """
    if name in NOT_IN_FILE:
        raise ConfigError(f"setting {name} is given per run (--{name}), not stored in {SETTINGS_FILE}")
    new = _coerce(name, raw_value, source=f"value for {name}")
    old = getattr(settings, name)
    settings.replace(**{name: new})  # validates the range
    path = settings.home / SETTINGS_FILE
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if new is None:
        data.pop(name, None)
    else:
        data[name] = str(new) if isinstance(new, Path) else new
    conn = connect(settings.db_path)
    with transaction(conn):
        atomic_write(path, tomli_w.dumps(data).encode(), mode=0o644)
        audit.append(
            conn, user=settings.user, action="settings.change", details={"setting": name, "old": old, "new": new, "file": str(path)}
        )
    return old, new
