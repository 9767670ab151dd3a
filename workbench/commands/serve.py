"""``workbench serve [--port P] [--host H]``: the Voila dashboards on this workspace.

Listens on 127.0.0.1 unless told otherwise (the dashboards show custody images: put them behind
JupyterHub with authentication to serve several people; see the README). The landing page at
``/`` links the analyst and reviewer dashboards and the technical notebooks. Ctrl-C stops it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_serve(args, ws: Workspace, out: Output) -> int:
    from ..ui.serve import serve

    home, user = ws.home, ws.user
    home.mkdir(parents=True, exist_ok=True)
    ws.close()  # the dashboards' kernels open the workspace themselves
    return serve(
        home,
        port=args.port,
        host=args.host,
        open_browser=args.open,
        extra_env={"WORKBENCH_USER": user},
        max_upload_bytes=ws.settings.upload_max_bytes,
    )


def register(commands, add) -> None:
    p = add(commands, "serve", cmd_serve, "serve the Voila dashboards for this workspace (landing page at /)")
    p.add_argument("--port", type=int, default=8866, metavar="P", help="port (default 8866)")
    p.add_argument("--host", default="127.0.0.1", metavar="H", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--open", action="store_true", help="open the landing page in a browser")
