"""``workbench demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_demo(args, ws: Workspace, out: Output) -> int:
    from ..demo import run_demo

    status = run_demo(ws, out)
    if args.no_serve or status:
        return status
    from ..ui.serve import serve

    home, user = ws.home, ws.user
    ws.close()
    return serve(
        home, port=args.port or 8866, host=args.host, extra_env={"WORKBENCH_USER": user}, max_upload_bytes=ws.settings.upload_max_bytes
    )


def register(commands, add) -> None:
    p = add(
        commands, "demo", cmd_demo, "build a demo workspace from images shipped in installed packages, search it, then serve the dashboards"
    )
    p.add_argument("--no-serve", action="store_true", help="stop after the demo search (do not start the dashboards)")
    p.add_argument("--port", type=int, metavar="P", help="dashboard port (default 8866)")
    p.add_argument("--host", default="127.0.0.1", metavar="H", help="address to listen on (default 127.0.0.1: this machine only)")
