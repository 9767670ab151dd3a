"""Which workspace a dashboard opens, and as whom.

A dashboard kernel inherits the environment of the server that started it (``workbench serve``):
``WORKBENCH_HOME`` names the workspace. The person is the one the environment authenticated:
JupyterHub's ``JUPYTERHUB_USER`` when the dashboards run behind JupyterHub, else
``WORKBENCH_USER`` (set by ``workbench serve`` / ``workbench demo``), else the operating-system
user running the server.
"""

from __future__ import annotations

import getpass
import os

from ..workspace import Workspace


def current_user() -> str:
    """The person using this dashboard (see the module docstring for the order)."""
    for name in ("JUPYTERHUB_USER", "WORKBENCH_USER"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return getpass.getuser()


def open_workspace(home: str | os.PathLike | None = None, *, user: str | None = None) -> Workspace:
    """The dashboard's workspace: ``home`` or ``$WORKBENCH_HOME``, as ``user`` or :func:`current_user`."""
    return Workspace.open(home, user=user or current_user())
