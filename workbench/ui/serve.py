"""Start the Voila server that shows the analysts' dashboards (the future ``workbench serve``).

Why tree mode: Voila >= 0.5 serves either one notebook at ``/`` (and nothing else) or a folder,
with ``/`` listing its notebooks and ``/voila/render/<name>.ipynb`` running one. The workbench
has several dashboards, so the folder ``notebooks/`` is served and ``/`` is the landing page that
lists them. The classic (server-rendered) tree page is used: a plain list of links that shows
only notebooks, needs no JavaScript and logs no errors, unlike the JupyterLab-style tree of 0.5,
whose widget plugins fail to activate on a page without a kernel.

Why the environment: each page gets a fresh kernel that inherits the server's environment, so
the workspace reaches the notebooks as ``WORKBENCH_HOME`` (read by ``Settings.load`` and ``ui.session``) and the
notebooks need no path typed in. ``JUPYTER_PREFER_ENV_PATH=1`` makes the ``python3`` kernelspec
of this environment win over one in the user's home; jupyter_client runs a kernelspec whose
command is ``python`` with the server's own interpreter, so kernels use this venv's Python.

Why these Voila settings: analysts never see tracebacks (``show_tracebacks=False``); a taken port
fails loudly instead of Voila silently moving to another one (``port_retries=0``), so the printed
address is always right. Kernels are not pre-heated by default: a pre-heated kernel has already
run its notebook when the analyst arrives (stale case lists) and keeps one idle kernel per
dashboard in memory, for a gain measured at about 0.5 s of the 2-2.5 s a small widget notebook
takes to become usable on 2 cores (a dashboard that loads models at start gains more).

No token is asked for: the server listens on 127.0.0.1 unless told otherwise.

Only the standard library is imported here, so the command line stays fast; ipywidgets is
imported by the kernels, never by this module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Mapping
from pathlib import Path

DEFAULT_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
STOP_TIMEOUT = 15.0  # seconds Voila gets to shut its kernels down before it is killed


def voila_command(
    notebooks_dir: str | os.PathLike | None = None,
    *,
    port: int = 8866,
    host: str = "127.0.0.1",
    preheat: bool = False,
    python: str = sys.executable,
    max_upload_bytes: int = 200 * 1024 * 1024,
) -> list[str]:
    """The command line that runs Voila on ``notebooks_dir`` (default: the project's ``notebooks/``)."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else DEFAULT_NOTEBOOKS
    return [
        python, "-m", "workbench.ui.voila_main", str(folder.resolve()),  # Voila's own main (see that module)
        "--no-browser",
        f"--port={port}",
        "--Voila.port_retries=0",
        f"--Voila.ip={host}",
        "--classic-tree",
        "--show_tracebacks=False",
        "--theme=light",
        f"--preheat_kernel={preheat}",
        # An upload travels as one websocket message; Tornado's default limit (10 MiB) would drop
        # bigger files without a word, so the limit follows the workspace's upload cap.
        f"--Voila.tornado_settings={{'websocket_max_message_size': {int(max_upload_bytes) + (1 << 20)}}}",
    ]  # fmt: skip


def server_env(home: str | os.PathLike, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus what the dashboards' kernels need (see the module docstring)."""
    env = dict(os.environ)
    env["WORKBENCH_HOME"] = str(Path(home).expanduser().resolve())
    env["JUPYTER_PREFER_ENV_PATH"] = "1"
    env.update(extra_env or {})
    return env


def server_url(host: str, port: int) -> str:
    """The address a browser on this machine uses (an IPv6 literal needs brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Poll ``url`` until it answers 200; False when the process exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM (Voila then shuts its kernels down), SIGKILL to the whole group if that hangs.

    The server runs in its own session (``start_new_session=True``), so its group holds its kernels.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def port_is_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound: checked first, else another server there would look like ours."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Tornado does: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(
    home: str | os.PathLike,
    *,
    port: int = 8866,
    host: str = "127.0.0.1",
    open_browser: bool = False,
    notebooks_dir: str | os.PathLike | None = None,
    extra_env: Mapping[str, str] | None = None,
    max_upload_bytes: int = 200 * 1024 * 1024,
) -> int:
    """Serve the dashboards for workspace ``home`` until Ctrl-C (or SIGTERM); return an exit status.

    Ctrl-C stops the server and its kernels and returns 0 without a traceback. The server runs in
    its own session so that the terminal's Ctrl-C reaches only this process, which then stops
    Voila exactly once. If Voila exits on its own (port taken, bad folder), its status is returned.
    """
    folder = Path(notebooks_dir) if notebooks_dir is not None else DEFAULT_NOTEBOOKS
    if not folder.is_dir():
        print(f"error: no notebooks folder at {folder}", file=sys.stderr)
        return 1
    if not port_is_free(host, port):
        print(f"error: port {port} on {host} is in use; choose another port", file=sys.stderr)
        return 1
    process = subprocess.Popen(
        voila_command(folder, port=port, host=host, max_upload_bytes=max_upload_bytes),
        env=server_env(home, extra_env),
        start_new_session=True,
    )
    url = server_url(host, port)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = (signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, _interrupt)) if main_thread else None
    try:
        wait_until_ready(url, process, timeout=120)
        if process.poll() is None:
            print(f"Workbench dashboards: {url}  (Ctrl-C to stop)", flush=True)
            if open_browser:
                webbrowser.open(url)
        status = process.wait()
        if status:
            print(f"error: the dashboard server stopped with status {status}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print("stopping the dashboard server", file=sys.stderr, flush=True)
        return 0
    finally:
        if main_thread:  # a second Ctrl-C must not interrupt the shutdown (stop() has its own timeout)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop(process)
        if main_thread:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])
