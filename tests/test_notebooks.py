"""The reviewer, gallery admin and threshold tuning notebooks run top to bottom in a real kernel.

Each runs with nbclient in the ``python3`` kernel, as Voila would run it: ``WORKBENCH_HOME`` names a
demo workspace built here (a search of the demo still with a first verdict by analyst1, so the
reviewer's queue is not empty) and ``WORKBENCH_USER`` the person. A notebook fails the test on any
error output. After the notebook, one check cell (added here, not in the file) waits for the app's
background action and fails if it ended in an error, then prints the status line.

The threshold tuning notebook runs on package images always; on glint24_aligned from the shared
data only when that is present (else skipped with the reason).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from workbench.config import Settings
from workbench.demo import build_demo_workspace
from workbench.workspace import Workspace

from conftest import PROJECT_ROOT, SHARED_DATA

NOTEBOOKS = PROJECT_ROOT / "notebooks"
MINE = ["reviewer.ipynb", "gallery_admin.ipynb", "threshold_tuning.ipynb"]
CELL_TIMEOUT_S = 240

CHECK_CELL = """\
assert app.runner.wait(120), "the app's background action did not finish"
assert app.runner.last_error is None, app.status.message
print("STATUS", app.status.kind, "|", app.status.message)
"""


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, session_home, engine) -> Path:
    """A demo workspace with one search of the demo still and a first verdict by analyst1."""
    home = tmp_path_factory.mktemp("notebooks") / "workspace"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace(Settings(home=home, user="analyst1"), engine=engine) as ws:
        built = build_demo_workspace(ws)
        run = ws.search_files(built["case"], [built["probe"]], top=5)
        top = run.candidates[0]
        ws.first_verdict(run.search_id, top.subject_id, "possible match", "same ear shape and hairline", probe_id=top.probe_id)
    return home


def run_notebook(name: str, home: Path, tmp: Path, *, user: str, parameters: dict | None = None, env: dict | None = None) -> str:
    """Run notebook ``name`` with the check cell appended; return all its text output.

    ``parameters`` replace the assignments of the cell tagged ``parameters`` (as papermill would);
    the kernel's temporary files go to ``tmp`` (TMPDIR), so the test leaves none behind.
    """
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if parameters:
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += "\n# injected by the test\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    kernel_env = {
        **os.environ,
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_USER": user,
        "TMPDIR": str(tmp),  # the tuning notebook's labelled set is written under mkdtemp()
        **(env or {}),
    }
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=kernel_env)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{name}: {output.get('ename')}: {output.get('evalue')}"
            if output["output_type"] == "stream":
                assert "Traceback" not in output["text"], f"{name} wrote a traceback:\n{output['text']}"
                texts.append(output["text"])
            elif "data" in output:
                texts.append(output["data"].get("text/plain", ""))
                if "application/vnd.jupyter.widget-view+json" in output["data"]:
                    texts.append("<widget>")
    return "\n".join(texts)


@pytest.mark.parametrize("name", MINE)
def test_notebook_is_clean_and_only_composes_the_library(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs must be cleared"
    imports = [line for c in code for line in c.source.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.startswith(("from workbench.", "import tempfile")) for line in imports), imports


def test_reviewer_notebook(demo_home, tmp_path):
    out = run_notebook("reviewer.ipynb", demo_home, tmp_path, user="reviewer2")
    assert "<widget>" in out
    assert "1 candidate awaits a second review" in out


def test_gallery_admin_notebook(demo_home, tmp_path):
    out = run_notebook("gallery_admin.ipynb", demo_home, tmp_path, user="admin1")
    assert "<widget>" in out
    assert "The gallery holds 8 subjects" in out


def test_threshold_tuning_notebook_on_package_images(demo_home, tmp_path, engine):
    reason = "notebook test: package images (never in a real workspace)"
    out = run_notebook(
        "threshold_tuning.ipynb", demo_home, tmp_path, user="tech1", parameters={"DATASET": "package", "RECORD_REASON": reason}
    )
    assert "package images, not a benchmark" in out.lower()
    assert "'auc'" in out and "'rank1'" in out
    assert "FNMR at threshold" in out  # the intervals table
    assert "No recommendation: a rate of 0.01 needs at least 300 different-person comparisons" in out  # 90 pairs: too few, said
    assert "photo_half" in out and "left" in out and "right" in out  # the per-group table and ratios
    assert "recorded threshold version" in out and "<widget>" in out
    assert "STATUS success | Threshold" in out and "every search from now on records it" in out  # the app's last word
    with Workspace(Settings(home=demo_home, user="tech1"), engine=engine) as ws:
        version = ws.current_threshold()
    assert version is not None and version.reason == reason and version.set_by == "tech1"
    assert version.evaluation_sha256 and version.evaluation["kind"] == "tuning notebook"


@pytest.mark.shared_data
def test_threshold_tuning_notebook_on_glint24(demo_home, shared_data, tmp_path):
    if not (shared_data / "faces" / "glint24_aligned").is_dir():
        pytest.skip(f"faces/glint24_aligned not found in {shared_data}")
    out = run_notebook(
        "threshold_tuning.ipynb",
        demo_home,
        tmp_path,
        user="tech1",
        parameters={"DATASET": "shared", "SHARED_IMAGES_PER_IDENTITY": 6},
        env={"WORKBENCH_SHARED_DATA": str(SHARED_DATA)},
    )
    assert "glint24_aligned" in out and "Evaluation done" in out
    assert "'aligned': True" in out  # glint24 crops are evaluated as aligned crops, without detection
    assert "sex" in out and "Nothing recorded: RECORD_REASON is blank." in out  # metadata.csv gives the groups; nothing set
