"""Shared fixtures: real models, real images from installed packages, temporary workspaces.

* ``engine``: one FaceEngine (default pack) for the whole session; loading costs about a second.
* ``workspace``: a fresh workspace folder per test whose ``models/`` links to the session's
  converted pack, so each test starts clean without reconverting the models.
* ``shared_data``: ../shared/data, or the test is skipped with the reason.
* ``t1_faces`` etc.: faces of the images InsightFace and scikit-image ship.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from workbench.config import Settings
from workbench.samples import sample_image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORKBENCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _audit_secrets_outside_home(tmp_path_factory):
    """Audit keys and checkpoints live outside the workspace (in the user's home by default):
    tests keep them in a temporary folder, also for the CLI processes they start. The tests act
    as several people (--user alice, --user bob) from one login, so declared names are honoured."""
    root = tmp_path_factory.mktemp("audit-secrets")
    patch = pytest.MonkeyPatch()
    patch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(root / "keys" / "audit-{workspace_id}.key"))
    patch.setenv("WORKBENCH_AUDIT_CHECKPOINT_DIR", str(root / "checkpoints" / "{workspace_id}"))
    patch.delenv("WORKBENCH_AUDIT_KEY_DIR", raising=False)
    patch.setenv("WORKBENCH_DECLARED_USERS", "true")
    yield root
    patch.undo()


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    """A workspace whose models/ holds the converted default pack, shared by all tests."""
    from workbench.models import ensure_default_pack

    home = tmp_path_factory.mktemp("session-home")
    ensure_default_pack(home / "models")
    return home


@pytest.fixture
def workspace(tmp_path, session_home) -> Path:
    """A fresh, empty workspace folder for one test (models shared with the session)."""
    home = tmp_path / "workspace"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    return home


@pytest.fixture
def settings(workspace) -> Settings:
    return Settings(home=workspace, user="test-user")


@pytest.fixture(scope="session")
def engine(session_home):
    from workbench.engine import FaceEngine

    return FaceEngine.from_settings(Settings(home=session_home))


@pytest.fixture(scope="session")
def t1_path() -> Path:
    return sample_image("t1")


@pytest.fixture(scope="session")
def tom_hanks_path() -> Path:
    return sample_image("tom_hanks")


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return sample_image("astronaut")


@pytest.fixture(scope="session")
def t1_rgb(t1_path) -> np.ndarray:
    from workbench.images import load_image

    return load_image(t1_path)


@pytest.fixture(scope="session")
def t1_faces(engine, t1_path):
    """The six faces of t1.jpg, analysed, in a fixed left-to-right order."""
    faces = engine.analyse(t1_path)
    return sorted(faces, key=lambda f: f.bbox_xyxy[0])


def face_crop(rgb: np.ndarray, face, margin: float = 0.6) -> np.ndarray:
    """A loose crop around a face (margin = share of the box size added on each side)."""
    x1, y1, x2, y2 = face.bbox_xyxy
    w, h = x2 - x1, y2 - y1
    top, bottom = int(max(0, y1 - margin * h)), int(min(rgb.shape[0], y2 + margin * h))
    left, right = int(max(0, x1 - margin * w)), int(min(rgb.shape[1], x2 + margin * w))
    return np.ascontiguousarray(rgb[top:bottom, left:right])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA} (set WORKBENCH_SHARED_DATA)")
    return SHARED_DATA


SHARED_PACK_FILES = ("scrfd_500m_bnkps.onnx", "mobilefacenet_128d.onnx")


@pytest.fixture(scope="session")
def scrfd_mfn_folder(shared_data, tmp_path_factory) -> Path:
    """A folder holding SCRFD-500M and MobileFaceNet from ../shared/data: an InsightFace-style pack."""
    import shutil

    folder = tmp_path_factory.mktemp("packs") / "scrfd_mfn"
    folder.mkdir()
    for name in SHARED_PACK_FILES:
        shutil.copy(shared_data / "models" / name, folder)
    return folder


def write_custody_folder(folder: Path, t1_rgb, t1_faces, tom_hanks_path, astronaut_path) -> Path:
    """One sub-folder per subject: t1's six people (T1-0 ... T1-5, left to right) and two portraits."""
    from workbench.images import load_image

    from factories import save

    for index, face in enumerate(t1_faces):
        save(face_crop(t1_rgb, face), folder / f"T1-{index}" / "custody.png")
    save(load_image(tom_hanks_path), folder / "HANKS-1" / "custody.png")
    save(load_image(astronaut_path), folder / "COLLINS-1" / "custody.png")
    return folder
