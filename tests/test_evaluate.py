"""Accuracy figures: hand-made score lists with known answers, then real runs on real faces."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.evaluate import identification_metrics, verification_metrics

from conftest import face_crop
from factories import blur, save, scale_face_to


def test_perfect_separation():
    result = verification_metrics([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert result["accuracy"] == 1.0 and result["auc"] == 1.0 and result["eer"] == 0.0
    assert result["tar_at_fmr"] == {"1e-2": 1.0, "1e-3": 1.0}
    assert 0.2 < result["best_threshold"] <= 0.8


def test_worked_example():
    """Mated 0.9 0.8 0.6, non-mated 0.7 0.5 0.4: 8 of 9 mated/non-mated orderings right."""
    result = verification_metrics([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 1, 0, 1, 0, 0])
    assert result["auc"] == pytest.approx(8 / 9)
    assert result["accuracy"] == pytest.approx(5 / 6)
    assert result["eer"] == pytest.approx(1 / 3)
    assert result["tar_at_fmr"]["1e-2"] == pytest.approx(2 / 3)  # threshold 0.8 admits no non-mate
    assert result["threshold_at_fmr"]["1e-2"] == pytest.approx(0.8)


def test_tar_at_fmr_on_a_thousand_nonmates():
    rng = np.random.default_rng(0)
    nonmated = rng.uniform(0, 0.5, 1000)
    nonmated[:10] = [0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995]  # 1% beat every mate below
    mated = np.concatenate([np.full(50, 0.9), np.full(50, 0.999)])
    result = verification_metrics(np.concatenate([mated, nonmated]), [1] * 100 + [0] * 1000)
    assert result["tar_at_fmr"]["1e-2"] == pytest.approx(1.0)  # 10 false matches allowed
    assert result["tar_at_fmr"]["1e-3"] == pytest.approx(0.5)  # one allowed: only the 0.999 mates pass


@pytest.mark.parametrize("scores, labels, problem", [
    ([0.5, 0.6], [1, 1], "both"),
    ([0.5], [1, 0], "equal length"),
])
def test_bad_score_lists(scores, labels, problem):
    with pytest.raises((WorkbenchError, ValueError), match=problem):
        verification_metrics(scores, labels)


def test_identification_worked_example():
    gallery = ["ann", "bob", "cat"]
    scores = np.array([
        [0.9, 0.2, 0.1],  # ann: rank 1
        [0.3, 0.5, 0.6],  # bob: rank 2
        [0.1, 0.2, 0.8],  # cat: rank 1
        [0.4, 0.3, 0.2],  # dan: not in the gallery
    ])
    result = identification_metrics(scores, ["ann", "bob", "cat", "dan"], gallery, failed_probe_labels=["ann"])
    assert result["n_mated"] == 4  # the failed ann probe counts as a miss
    assert result["rank1"] == pytest.approx(2 / 4)
    assert result["rank10"] == pytest.approx(3 / 4)
    assert result["cmc"][1] == pytest.approx(3 / 4)
    # non-mated searches: dan (0.4) and each mated probe without its mate (0.2, 0.6, 0.2)
    assert result["n_nonmated_searches"] == 4
    # FPIR 0.01 of 4 searches allows none: threshold just above 0.6; only ann (0.9) and cat (0.8) pass
    assert result["threshold_at_fpir"]["0.01"] == pytest.approx(0.6)
    assert result["fnir_at_fpir"]["0.01"] == pytest.approx(2 / 4)


def test_identification_needs_mated_probes():
    with pytest.raises(WorkbenchError, match="identity is in the gallery"):
        identification_metrics(np.zeros((1, 1)), ["x"], ["y"])


# -- real runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_folders(tmp_path_factory, t1_rgb, t1_faces):
    """Identity folders of aligned crops and of loose photos made from t1's six people."""
    from workbench.engine import align_face

    root = tmp_path_factory.mktemp("identities")
    for index, face in enumerate(t1_faces):
        crop = face_crop(t1_rgb, face)
        person = f"person{index}"
        save(face.aligned, root / "aligned" / person / "a.png")
        save(align_face(blur(t1_rgb, 1.5), face.landmarks), root / "aligned" / person / "b.png")
        save(crop, root / "gallery" / person / "photo.png")
        save(scale_face_to(crop, face.width, 40), root / "probes" / person / "small.png")
        save(blur(crop, 2.0), root / "probes" / person / "blurred.png")
    (root / "probes" / "person0" / "broken.png").write_text("not an image")
    return root


def _pairs_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "same"])
        writer.writerows(rows)
    return path


def test_cli_evaluate_pairs_aligned(face_folders, tmp_path, workspace, capsys):
    people = [f"person{i}" for i in range(6)]
    rows = [(f"{p}/a.png", f"{p}/b.png", 1) for p in people]
    rows += [(f"{a}/a.png", f"{b}/b.png", 0) for a in people for b in people if a < b]
    pairs = _pairs_csv(tmp_path / "pairs.csv", rows + [("person0/a.png", "missing.png", 0)])
    code = main(["--home", str(workspace), "evaluate", "pairs", "--pairs", str(pairs), "--images", str(face_folders / "aligned"), "--aligned", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"accuracy", "auc", "eer", "tar_at_fmr", "failed_to_enrol"} <= set(result)
    assert set(result["tar_at_fmr"]) == {"1e-2", "1e-3"}
    assert result["failed_to_enrol"] == 1 and "missing.png" in result["failures"][0]
    assert result["accuracy"] == 1.0 and result["auc"] == 1.0


def test_cli_evaluate_identification(face_folders, workspace, capsys):
    code = main(["--home", str(workspace), "evaluate", "identification", "--gallery", str(face_folders / "gallery"), "--probes", str(face_folders / "probes"), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"rank1", "rank10", "fnir_at_fpir"} <= set(result)
    assert result["failed_to_enrol"] == {"gallery": 0, "probes": 1}
    assert result["n_mated"] == 13  # 12 readable probes + the unreadable one counted as a miss
    assert result["rank1"] == pytest.approx(12 / 13)


@pytest.mark.parametrize("content, problem", [
    ("a,b\nx.png,y.png\n", "missing column"),
    ("a,b,same\nx.png,y.png,yes\n", "same must be 1 or 0"),
    ("a,b,same\n", "holds no pairs"),
])
def test_bad_pairs_files(tmp_path, workspace, capsys, content, problem):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(content)
    assert main(["--home", str(workspace), "evaluate", "pairs", "--pairs", str(pairs), "--images", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert problem in error and str(pairs) in error


@pytest.mark.shared_data
def test_glint24_verification_with_aligned_crops(shared_data, tmp_path, workspace, capsys):
    folder = shared_data / "faces" / "glint24_aligned"
    pairs = tmp_path / "glint_pairs.csv"
    assert main(["--home", str(workspace), "evaluate", "make-pairs", str(folder), "--out", str(pairs), "--per-identity", "10"]) == 0
    capsys.readouterr()
    assert main(["--home", str(workspace), "evaluate", "pairs", "--pairs", str(pairs), "--images", str(folder), "--aligned", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"] == 480 and result["failed_to_enrol"] == 0
    assert result["accuracy"] > 0.97 and result["auc"] > 0.99


@pytest.mark.shared_data
def test_fr_examples_identification(shared_data, tmp_path, workspace, capsys):
    """Gallery fr_examples/train; probes: the single-face test photos filed by identity."""
    import shutil

    probes = tmp_path / "probes"
    for name, person in [("obama1.jpg", "obama"), ("alex_lacamoire1.jpg", "alex_lacamoire"), ("johnsnow_test1.jpg", "kit_harington")]:
        (probes / person).mkdir(parents=True)
        shutil.copy(shared_data / "faces" / "fr_examples" / "test" / name, probes / person)
    assert main(["--home", str(workspace), "evaluate", "identification", "--gallery", str(shared_data / "faces" / "fr_examples" / "train"), "--probes", str(probes), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rank1"] == 1.0
