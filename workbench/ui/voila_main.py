"""Runs Voila as ``python -m voila`` does, minus one deprecation notice meant for developers.

:func:`workbench.ui.serve.voila_command` sets Tornado's websocket limit with a dict literal
(``--Voila.tornado_settings={...}``). traitlets deprecates that form, but its replacement
(``key=value``) would hand Tornado the size as a string. Voila turns traitlets' deprecation
warnings on when it is imported (so ``python -W`` cannot), and the person who started the
dashboards would read a traceback-like notice in the terminal: it is silenced here, after that.
"""

from __future__ import annotations

import warnings


def main() -> None:
    import voila  # noqa: F401 - its import adds the filter that shows traitlets' deprecations

    warnings.filterwarnings("ignore", message="--tornado_settings=", category=DeprecationWarning)
    from voila.app import main as voila_main

    voila_main()


if __name__ == "__main__":
    main()
