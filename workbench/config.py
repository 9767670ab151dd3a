"""Settings: workspace path, detection, search and scale-out parameters.

Precedence, lowest first: the defaults below, ``<home>/workbench.toml``, environment variables
``WORKBENCH_<NAME>`` (for example ``WORKBENCH_MIN_FACE_PX=24``), then explicit keyword arguments.
An unknown key or a value of the wrong type raises :class:`ConfigError`; nothing falls back
silently.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_HOME = Path("workspace")
SETTINGS_FILE = "workbench.toml"
#: values of the footage_scan setting: skip what cannot hold a new face, or scan every frame whole.
FOOTAGE_SCANS = ("skip", "full")


@dataclass(frozen=True)
class Settings:
    """All tunable parameters. Units are in the names or the comments."""

    home: Path = DEFAULT_HOME
    #: model pack used to detect and embed (a folder name under ``<home>/models``).
    pack: str = "opencv-zoo"
    #: detector confidence below which a detection is dropped; None = the pack's own default.
    detection_threshold: float | None = None
    #: smallest face the detector must find, in pixels of face width in the source image.
    min_face_px: int = 20
    #: images with more pixels than this are refused before decoding (memory guard).
    max_image_pixels: int = 120_000_000
    #: files larger than this (bytes) are refused before reading.
    max_file_bytes: int = 512 * 1024 * 1024
    #: aligned crops per recogniser call.
    embed_batch_size: int = 32
    # Index defaults from bench/bench_index.py and bench/bench_sharded.py (SFace-calibrated
    # synthetic data, 2 cores): at the target of at most 1 mate in 1,000 lost to the index, Annoy
    # needs about 4 to 8 inspected nodes per face and is then slower than one exact numpy search
    # at 10k to 1M faces, and 2 to 7 times slower at 10M (as 10 shards of 1M); batched exact search
    # beats it everywhere. So searches are exact at every size (sharded on Dask where one machine
    # is not enough: search_shards); the index is built by `gallery rebuild` and used when asked.
    #: Annoy trees; at equal search_k, 16 trees missed no more mates than 32 or 64, and build
    #: in half the time into a smaller file.
    index_n_trees: int = 16
    #: Annoy nodes inspected per query; None = 8 per face in the index (see
    #: workbench.gallery.search.SEARCH_K_PER_FACE); too low a value silently loses mates.
    index_search_k: int | None = None
    #: galleries with at least this many faces let the Annoy index propose candidates; None =
    #: never (exact search at every size, the default: see above).
    exact_search_below: int | None = None
    #: candidate list length.
    top: int = 20
    #: operating threshold (cosine) for identification mode; None = the pack's default.
    threshold: float | None = None
    #: frames per second sampled from video.
    footage_fps: float = 5.0
    #: how sampled frames are searched for faces: "skip" runs the full detection pyramid on key
    #: frames only and, in between, only where a face can be (around live tracks, where the
    #: picture changed); "full" runs the full pyramid on every sampled frame.
    footage_scan: str = "skip"
    #: in "skip" mode, a key frame this often, seconds of footage. Every
    #: regions.WHOLE_SCAN_PERIODS-th key frame (16 s at 4 s) runs the full pyramid on the whole
    #: frame; the others search what changed since that whole scan (slow changes the per-sample
    #: differencing misses). Between key frames new faces are found where the picture changed.
    #: bench_footage.py on a static 1080p clip: 52x fewer canvases than the full scan at 4 s.
    footage_keyframe_s: float = 4.0
    #: gallery shards searched exactly on Dask workers (dask_scheduler or a LocalCluster), each
    #: holding its share of the embeddings; 0 = search in this process.
    search_shards: int = 0
    #: Dask scheduler address ("tcp://host:8786"); None = a LocalCluster on this machine.
    dask_scheduler: str | None = None
    #: Dask LocalCluster worker processes.
    dask_workers: int = 2
    #: user name recorded in the audit log.
    user: str = "unknown"
    #: honour a user name declared with ``--user`` / ``WORKBENCH_USER`` that differs from the
    #: authenticated one (the operating-system user for the CLI). For demos and tests; an
    #: administrator can also allow it for one workspace (``workbench users allow-declared on``).
    declared_users: bool = False
    #: retention: closed cases are archived, and archived cases untouched for this many days have
    #: their probe crops and embeddings purged (``workbench retention apply``); None = keep them.
    retention_days: int | None = None
    #: largest file an analyst may upload through a dashboard, bytes.
    upload_max_bytes: int = 200 * 1024 * 1024
    #: folder of exhibits (footage, stills) the dashboards offer to open; None = ``<home>/exhibits``.
    exhibits_dir: Path | None = None
    #: folders (absolute) whose images a manifest may name besides its own folder; a manifest
    #: path resolving anywhere else is refused. Environment: paths separated by ``:``.
    manifest_roots: tuple[Path, ...] = ()
    #: the secret key of the audit chain (HMAC-SHA256), a file outside the workspace folder;
    #: ``{workspace_id}`` in it is replaced by the workspace's random id. None =
    #: ``$XDG_CONFIG_HOME`` (``~/.config``) ``/workbench/audit-{workspace_id}.key``. Never read
    #: from workbench.toml: whoever can edit the workspace must not choose the key that checks it.
    audit_key_file: Path | None = None
    #: folder for signed checkpoints of the audit chain head, outside the workspace folder
    #: (``{workspace_id}`` replaced as above). None = ``$XDG_STATE_HOME`` (``~/.local/state``)
    #: ``/workbench/checkpoints/{workspace_id}``. Never read from workbench.toml.
    audit_checkpoint_dir: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        checks = [
            ("min_face_px", self.min_face_px >= 8, "at least 8"),
            ("max_image_pixels", self.max_image_pixels > 0, "positive"),
            ("max_file_bytes", self.max_file_bytes > 0, "positive"),
            ("embed_batch_size", self.embed_batch_size >= 1, "at least 1"),
            ("index_n_trees", self.index_n_trees >= 1, "at least 1"),
            ("top", self.top >= 1, "at least 1"),
            ("footage_fps", self.footage_fps > 0, "positive"),
            ("footage_scan", self.footage_scan in FOOTAGE_SCANS, f"one of {', '.join(FOOTAGE_SCANS)}"),
            ("footage_keyframe_s", self.footage_keyframe_s > 0, "positive"),
            ("search_shards", self.search_shards >= 0, "0 or more"),
            ("dask_workers", self.dask_workers >= 1, "at least 1"),
            ("upload_max_bytes", self.upload_max_bytes > 0, "positive"),
        ]
        if self.detection_threshold is not None:
            checks.append(("detection_threshold", 0 < self.detection_threshold < 1, "in (0, 1)"))
        if self.threshold is not None:
            checks.append(("threshold", -1 <= self.threshold <= 1, "in [-1, 1]"))
        # a pack is a folder name under <home>/models: never a path that leads elsewhere
        pack_ok = bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", str(self.pack)))
        checks.append(("pack", pack_ok, "a folder name (letters, digits, . _ -)"))
        roots = tuple(Path(r).expanduser() for r in (self.manifest_roots or ()))
        object.__setattr__(self, "manifest_roots", roots)
        checks.append(("manifest_roots", all(r.is_absolute() for r in roots), "absolute folder paths"))
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"setting {name} must be {expected}, got {getattr(self, name)!r}")
        for name in AUDIT_OUTSIDE_WORKSPACE:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser())
                _outside_workspace(name, getattr(self, name), self.home)
        if self.audit_key_file is not None or self.audit_checkpoint_dir is not None:
            # The audit log is written through bare database connections: they find these
            # paths by the database file (audit_locations).
            where = (self.audit_key_file, self.audit_checkpoint_dir)
            key = _db_key(self.db_path)
            if _AUDIT_LOCATIONS.get(key) != where:
                _AUDIT_LOCATIONS[key] = where
                _AUDIT_LOCATIONS_CHANGES[0] += 1

    @property
    def db_path(self) -> Path:
        return self.home / "workbench.db"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def exhibits_path(self) -> Path:
        """Where the dashboards look for exhibits: ``exhibits_dir``, else ``<home>/exhibits``."""
        return self.exhibits_dir if self.exhibits_dir is not None else self.home / "exhibits"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded files are kept, named by their sha256 (never by the name given)."""
        return self.home / "uploads"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(cls, home: str | os.PathLike | None = None, **overrides: Any) -> Settings:
        """Settings for a workspace: defaults, then its workbench.toml, the environment, overrides."""
        env = os.environ
        raw_home = home if home is not None else env.get("WORKBENCH_HOME", DEFAULT_HOME)
        if not str(raw_home).strip():
            where = "--home" if home is not None else "WORKBENCH_HOME"
            raise ConfigError(f"{where} is empty: name the workspace folder (a new folder makes a new workspace)")
        home_path = Path(raw_home)
        values: dict[str, Any] = {}
        values.update(_read_toml(home_path / SETTINGS_FILE))
        values.update(_read_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = home_path
        return cls(**_coerce_all(values, source="settings"))


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}

# -- where the audit key and checkpoints live --------------------------------------------------

#: settings that must name places outside the workspace folder, and are never read from its
#: workbench.toml (the audit key and checkpoints check the workspace: it cannot choose them).
AUDIT_OUTSIDE_WORKSPACE = ("audit_key_file", "audit_checkpoint_dir")

#: database file -> (key file, checkpoint folder) given explicitly to a Settings in this process.
_AUDIT_LOCATIONS: dict[str, tuple[Path | None, Path | None]] = {}


_AUDIT_LOCATIONS_CHANGES = [0]


def audit_locations_version() -> int:
    """Changes whenever a Settings names other audit locations (so callers may cache :func:`audit_locations`)."""
    return _AUDIT_LOCATIONS_CHANGES[0]


def _db_key(db_path: str | os.PathLike) -> str:
    return str(Path(db_path).expanduser().resolve())


def _outside_workspace(name: str, path: Path, home: Path) -> None:
    where, root = Path(path).expanduser().resolve(), Path(home).expanduser().resolve()
    if where == root or where.is_relative_to(root):
        raise ConfigError(f"setting {name} ({path}) must be outside the workspace folder {home}: it checks the workspace")


def audit_locations(db_path: str | os.PathLike) -> tuple[Path, Path]:
    """(key file, checkpoint folder) templates for the workspace database ``db_path``, each
    possibly holding ``{workspace_id}``: what a Settings of this process gave for that workspace,
    else ``WORKBENCH_AUDIT_KEY_FILE`` (or ``WORKBENCH_AUDIT_KEY_DIR``, a folder for the default
    file names) / ``WORKBENCH_AUDIT_CHECKPOINT_DIR``, else the defaults under ``$XDG_CONFIG_HOME``
    and ``$XDG_STATE_HOME``.

    Raises:
        ConfigError: a location inside the workspace folder.
    """
    env = os.environ
    key, checkpoints = _AUDIT_LOCATIONS.get(_db_key(db_path), (None, None))
    if key is None and env.get("WORKBENCH_AUDIT_KEY_FILE"):
        key = Path(env["WORKBENCH_AUDIT_KEY_FILE"])
    if key is None and env.get("WORKBENCH_AUDIT_KEY_DIR"):  # a folder for the default file names
        key = Path(env["WORKBENCH_AUDIT_KEY_DIR"]) / "audit-{workspace_id}.key"
    if checkpoints is None and env.get("WORKBENCH_AUDIT_CHECKPOINT_DIR"):
        checkpoints = Path(env["WORKBENCH_AUDIT_CHECKPOINT_DIR"])
    if key is None:
        key = Path(env.get("XDG_CONFIG_HOME") or "~/.config") / "workbench" / "audit-{workspace_id}.key"
    if checkpoints is None:
        checkpoints = Path(env.get("XDG_STATE_HOME") or "~/.local/state") / "workbench" / "checkpoints" / "{workspace_id}"
    key, checkpoints = key.expanduser(), checkpoints.expanduser()
    home = Path(db_path).expanduser().parent
    _outside_workspace("audit_key_file", key, home)
    _outside_workspace("audit_checkpoint_dir", checkpoints, home)
    return key, checkpoints


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML (not UTF-8 text: {exc})") from exc
    except OSError as exc:
        from .fileio import os_reason

        raise ConfigError(f"{path}: the settings file cannot be read ({os_reason(exc)})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - set(_FIELDS) - {"home"})
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
    refused = [name for name in AUDIT_OUTSIDE_WORKSPACE if name in data]
    if refused:
        raise ConfigError(
            f"{path}: {', '.join(refused)} cannot be set in the workspace's own settings file (whoever can edit the "
            f"workspace could point it at a key of their own); set WORKBENCH_{refused[0].upper()} instead"
        )
    data.pop("home", None)
    return _coerce_all(data, source=str(path))


def _read_env(env) -> dict[str, Any]:
    values = {}
    for name in _FIELDS:
        if name == "home":
            continue
        raw = env.get(f"WORKBENCH_{name.upper()}")
        if raw is not None:
            values[name] = _coerce(name, raw, source=f"WORKBENCH_{name.upper()}")
    return values


def _coerce_all(values: dict[str, Any], *, source: str) -> dict[str, Any]:
    return {k: _coerce(k, v, source=source) for k, v in values.items()}


def _coerce(name: str, value: Any, *, source: str) -> Any:
    if name not in _FIELDS:
        raise ConfigError(f"{source}: unknown setting {name!r}")
    annotation = str(_FIELDS[name].type)
    if annotation.startswith("tuple[Path"):
        return _paths(name, value, source=source)
    if value is None or (isinstance(value, str) and value.lower() in {"none", ""} and "None" in annotation):
        if "None" in annotation:
            return None
        raise ConfigError(f"{source}: setting {name} cannot be empty")
    try:
        if annotation.startswith("bool"):
            return _boolean(value)
        if annotation.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        if annotation.startswith("float"):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("not a finite number")
            return number
        if annotation.startswith("Path"):
            return Path(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: setting {name} expects {annotation}, got {value!r}") from exc


def _paths(name: str, value: Any, *, source: str) -> tuple[Path, ...]:
    """A list of folders: a TOML list, a tuple, or text with paths separated by ``os.pathsep``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
        return ()
    if isinstance(value, str):
        parts = [p for p in value.split(os.pathsep) if p.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in value):
        parts = list(value)
    else:
        raise ConfigError(f"{source}: setting {name} expects a list of folders, got {value!r}")
    if any("\x00" in str(p) for p in parts):
        raise ConfigError(f"{source}: setting {name} holds a NUL character")
    return tuple(Path(p).expanduser() for p in parts)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("not true or false")
