"""``python -m workbench``: the command line (see :mod:`workbench.cli`)."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command is still loading: stop quietly, as later
    print("interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
