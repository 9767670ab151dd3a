"""Settings: defaults, workbench.toml, environment and explicit values, with clear errors."""

from __future__ import annotations

import pytest

from workbench.config import Settings
from workbench.errors import ConfigError


def test_precedence(tmp_path, monkeypatch):
    (tmp_path / "workbench.toml").write_text("min_face_px = 40\ntop = 10\nthreshold = 0.4\n")
    monkeypatch.setenv("WORKBENCH_TOP", "15")
    settings = Settings.load(tmp_path, threshold=0.5)
    assert settings.min_face_px == 40  # file
    assert settings.top == 15  # environment beats file
    assert settings.threshold == 0.5  # explicit beats both
    assert settings.footage_fps == 5.0  # default
    assert settings.db_path == tmp_path / "workbench.db"


def test_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    assert Settings.load().home == tmp_path


@pytest.mark.parametrize("toml, problem", [
    ("min_face = 40\n", "unknown setting"),
    ("min_face_px = 'big'\n", "expects int"),
    ("min_face_px = 2\n", "at least 8"),
    ("threshold = 3.0\n", "in [-1, 1]"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_settings_file(tmp_path, toml, problem):
    (tmp_path / "workbench.toml").write_text(toml)
    with pytest.raises(ConfigError) as info:
        Settings.load(tmp_path)
    assert problem in str(info.value)


def test_bad_environment_value(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FOOTAGE_FPS", "fast")
    with pytest.raises(ConfigError, match="WORKBENCH_FOOTAGE_FPS"):
        Settings.load(tmp_path)


def test_optional_values_accept_none(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DASK_SCHEDULER", "none")
    assert Settings.load(tmp_path).dask_scheduler is None
