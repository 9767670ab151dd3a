"""Settings: workspace path, detection, search and scale-out parameters.

Precedence, lowest first: the defaults below, ``<home>/workbench.toml``, environment variables
``WORKBENCH_<NAME>`` (for example ``WORKBENCH_MIN_FACE_PX=24``), then explicit keyword arguments.
An unknown key or a value of the wrong type raises :class:`ConfigError`; nothing falls back
silently.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_HOME = Path("workspace")
SETTINGS_FILE = "workbench.toml"


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
    # Index defaults from bench/bench_index.py (SFace-calibrated synthetic data, 2 cores): at
    # the target of at most 1 mate in 1,000 lost to the index, Annoy was 13x (1M faces: 282 ms
    # against 21 ms) to 50x (10k) slower than single-probe exact numpy search, and more against
    # batched exact search, so galleries are searched exactly up to 10M faces (5 GB of
    # embeddings); the index serves larger ones or explicit requests.
    #: Annoy trees; at equal search_k, 16 trees missed no more mates than 32 or 64, and build
    #: in half the time into a smaller file.
    index_n_trees: int = 16
    #: Annoy nodes inspected per query (-1 = Annoy's default, n_trees * top); 4M lost no mate in
    #: 2,000 at 1M faces (1M lost 8 per 1,000); too low a value silently loses mates.
    index_search_k: int = 4_000_000
    #: galleries with fewer faces than this are searched exactly (numpy), without Annoy.
    exact_search_below: int = 10_000_000
    #: candidate list length.
    top: int = 20
    #: operating threshold (cosine) for identification mode; None = the pack's default.
    threshold: float | None = None
    #: frames per second sampled from video.
    footage_fps: float = 5.0
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
    #: largest file an analyst may upload through a dashboard, bytes.
    upload_max_bytes: int = 200 * 1024 * 1024
    #: folder of exhibits (footage, stills) the dashboards offer to open; None = ``<home>/exhibits``.
    exhibits_dir: Path | None = None

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
            ("dask_workers", self.dask_workers >= 1, "at least 1"),
            ("upload_max_bytes", self.upload_max_bytes > 0, "positive"),
        ]
        if self.detection_threshold is not None:
            checks.append(("detection_threshold", 0 < self.detection_threshold < 1, "in (0, 1)"))
        if self.threshold is not None:
            checks.append(("threshold", -1 <= self.threshold <= 1, "in [-1, 1]"))
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"setting {name} must be {expected}, got {getattr(self, name)!r}")

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
        home_path = Path(home if home is not None else env.get("WORKBENCH_HOME", DEFAULT_HOME))
        values: dict[str, Any] = {}
        values.update(_read_toml(home_path / SETTINGS_FILE))
        values.update(_read_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = home_path
        return cls(**_coerce_all(values, source="settings"))


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - set(_FIELDS) - {"home"})
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
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
            return float(value)
        if annotation.startswith("Path"):
            return Path(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: setting {name} expects {annotation}, got {value!r}") from exc


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("not true or false")
