"""Sub-commands of ``workbench``: one module per command group, each with ``register(commands, add)``.

``add(subparsers, name, func, help)`` creates a sub-command with ``--json`` and binds ``func``;
``func(args, settings, out)`` returns the exit status. Add a module here to add a group.
"""

from __future__ import annotations

EXIT_OK, EXIT_ERROR = 0, 1

#: modules under workbench/commands, in the order they appear in ``workbench --help``.
COMMAND_MODULES = ["models", "faces", "evaluate", "gallery", "footage", "search", "cases", "settings", "demo"]


def engine_for(settings):
    """A FaceEngine for the settings' pack (loaded only by commands that need one)."""
    from ..engine import FaceEngine

    return FaceEngine.from_settings(settings)
