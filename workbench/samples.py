"""Face images that installed packages ship, for the demo and the tests (no faces in our repo).

* InsightFace: ``insightface/data/images/t1.jpg`` (six people) and ``Tom_Hanks_54745.png``.
* scikit-image: ``skimage/data/astronaut.png`` (Eileen Collins, one face).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import WorkbenchError


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WorkbenchError(f"package {package!r} is not installed; it ships the sample images")
    return Path(list(spec.submodule_search_locations)[0])


def sample_image(name: str) -> Path:
    """Path of a shipped sample image: "t1", "tom_hanks" or "astronaut"."""
    locations = {
        "t1": ("insightface", "data/images/t1.jpg"),
        "tom_hanks": ("insightface", "data/images/Tom_Hanks_54745.png"),
        "astronaut": ("skimage", "data/astronaut.png"),
    }
    if name not in locations:
        raise WorkbenchError(f"unknown sample image {name!r}; known: {', '.join(sorted(locations))}")
    package, relative = locations[name]
    path = _package_dir(package) / relative
    if not path.exists():
        raise WorkbenchError(f"{path}: sample image missing from the installed {package} package")
    return path
