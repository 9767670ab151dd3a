"""Accuracy figures: hand-made score lists with known answers, then real runs on real faces."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from workbench import evaluate
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
    images = str(face_folders / "aligned")
    code = main(["--home", str(workspace), "evaluate", "pairs", "--pairs", str(pairs), "--images", images, "--aligned", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"accuracy", "auc", "eer", "tar_at_fmr", "failed_to_enrol"} <= set(result)
    assert set(result["tar_at_fmr"]) == {"1e-2", "1e-3"}
    assert result["failed_to_enrol"] == 1 and "missing.png" in result["failures"][0]
    assert result["accuracy"] == 1.0 and result["auc"] == 1.0


def test_cli_evaluate_identification(face_folders, workspace, capsys):
    gallery, probes = str(face_folders / "gallery"), str(face_folders / "probes")
    code = main(["--home", str(workspace), "evaluate", "identification", "--gallery", gallery, "--probes", probes, "--json"])
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
    gallery = str(shared_data / "faces" / "fr_examples" / "train")
    assert main(["--home", str(workspace), "evaluate", "identification", "--gallery", gallery, "--probes", str(probes), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rank1"] == 1.0


# -- rates, intervals, groups and quality: hand-made comparisons with known answers ----------------


def worked_frame():
    """Mated 0.9 0.8 0.6, non-mated 0.7 0.5 0.4 (the worked example above), with identities."""
    return evaluate.comparisons_frame(
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 1, 0, 1, 0, 0],
        identity_a=["a", "b", "a", "c", "b", "c"], identity_b=["a", "b", "b", "c", "c", "a"],
        quality_a=[0.9, 0.9, 0.9, 0.2, 0.9, 0.9], quality_b=[0.8, 0.9, 0.9, 0.9, 0.9, None],
    )  # fmt: skip


@pytest.mark.parametrize("threshold, fmr, fnmr", [
    (0.35, 3 / 3, 0 / 3),
    (0.55, 1 / 3, 0 / 3),
    (0.65, 1 / 3, 1 / 3),
    (0.75, 0 / 3, 1 / 3),
    (0.95, 0 / 3, 3 / 3),
])  # fmt: skip
def test_fmr_and_fnmr_at_thresholds(threshold, fmr, fnmr):
    row = evaluate.rates(worked_frame(), [threshold]).iloc[0]
    assert row["fmr"] == pytest.approx(fmr) and row["fnmr"] == pytest.approx(fnmr)
    assert row["genuine"] == 3 and row["impostor"] == 3


def test_det_table_and_the_threshold_for_a_target_fmr():
    det = evaluate.det_table(worked_frame())
    assert list(det["threshold"]) == [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert list(det["fmr"]) == pytest.approx([1, 2 / 3, 1 / 3, 1 / 3, 0, 0])
    assert list(det["fnmr"]) == pytest.approx([0, 0, 0, 1 / 3, 1 / 3, 2 / 3])
    assert evaluate.threshold_at_fmr(worked_frame(), 0.01) == pytest.approx(0.7)  # just above the best non-mate
    assert evaluate.threshold_at_fmr(worked_frame(), 0.34) == pytest.approx(0.5)  # one false match allowed
    assert evaluate.threshold_at_fmr(worked_frame(), 1.0) is None


def test_eer_of_the_point_estimate_agrees_with_the_roc():
    rng = np.random.default_rng(3)
    mated, nonmated = rng.normal(0.6, 0.1, 400), rng.normal(0.3, 0.1, 400)
    frame = evaluate.comparisons_frame(np.r_[mated, nonmated], [1] * 400 + [0] * 400)
    table = evaluate.bootstrap_verification(frame, n_boot=0).set_index("figure")
    assert table.loc["EER", "value"] == pytest.approx(verification_metrics(frame["score"], frame["mated"])["eer"], abs=1e-9)
    assert table.loc["EER", "value"] == pytest.approx(norm.cdf(-1.5), abs=0.02)  # the two normals cross half-way


def test_a_figure_resting_on_too_few_comparisons_is_null_with_the_reason():
    table = evaluate.bootstrap_verification(worked_frame(), n_boot=50, threshold=0.65).set_index("figure")
    assert table["value"].isna().all() and table["low"].isna().all()
    assert table.loc["FNMR at threshold", "reason"] == "rests on 3 same-person comparisons; at least 30 are needed"
    assert table.loc["threshold at FMR 1e-3", "reason"].startswith("a rate of 0.001 needs at least 3,000 different-person comparisons")
    assert "1 of 3 different-person comparisons score this high" in table.loc["FMR at threshold", "reason"]
    assert set(table["genuine"]) == {3} and set(table["impostor"]) == {3} and set(table["identities"]) == {3}


def clustered(seed: int, *, identities: bool = True, n: int = 200, per: int = 4, person_sd: float = 0.05, pair_sd: float = 0.05):
    """Same-person scores 0.6 + a per-person offset + noise: the comparisons of one person are
    correlated, as in real data. FNMR at 0.5 is Phi(-0.1 / sd) exactly."""
    rng = np.random.default_rng(seed)
    who = np.repeat(np.arange(n), per)
    mated = 0.6 + rng.normal(0, person_sd, n)[who] + rng.normal(0, pair_sd, len(who))
    a = rng.integers(0, n, 300)
    b = (a + 1 + rng.integers(0, n - 1, 300)) % n
    ids = {"identity_a": [str(i) for i in np.r_[who, a]], "identity_b": [str(i) for i in np.r_[who, b]]} if identities else {}
    return evaluate.comparisons_frame(np.r_[mated, rng.normal(0.1, 0.1, 300)], [1] * len(who) + [0] * 300, **ids)


def coverage(**kwargs) -> float:
    truth = norm.cdf(-0.1 / np.hypot(kwargs.get("person_sd", 0.05), kwargs.get("pair_sd", 0.05)))
    hits = 0
    for seed in range(100):
        row = evaluate.bootstrap_verification(clustered(seed, **kwargs), n_boot=200, level=0.9, seed=seed, threshold=0.5)
        row = row.set_index("figure").loc["FNMR at threshold"]
        hits += row["low"] <= truth <= row["high"]
    return hits / 100


def test_bootstrap_intervals_contain_the_known_value_at_the_stated_rate():
    assert 0.82 <= coverage() <= 0.97  # 90% intervals over 100 data sets


def test_resampling_pairs_instead_of_identities_gives_intervals_too_narrow():
    strongly_clustered = {"person_sd": 0.08, "pair_sd": 0.02}
    by_identity = coverage(**strongly_clustered)
    by_pair = coverage(identities=False, **strongly_clustered)
    assert by_pair < 0.7 < by_identity  # why the workbench resamples identities


def synthetic_groups():
    """Two groups of 40 people: group B's different-person pairs score higher (more false
    matches) and its same-person pairs lower (more misses); group C has two people only."""
    rng = np.random.default_rng(11)
    scores, same, a, b = [], [], [], []
    people = {"A": [f"A{i}" for i in range(40)], "B": [f"B{i}" for i in range(40)], "C": ["C0", "C1"]}
    for group, (mate_mean, non_mean) in {"A": (0.70, 0.20), "B": (0.55, 0.30), "C": (0.70, 0.20)}.items():
        for person in people[group]:
            scores += list(rng.normal(mate_mean, 0.1, 5))
            same += [1] * 5
            a += [person] * 5
            b += [person] * 5
        if group == "C":
            first, second = np.array(["C0"] * 4), np.array(["C1"] * 4)
        else:
            first, second = rng.choice(people[group], (2, 2000))
        keep = first != second
        scores += list(rng.normal(non_mean, 0.1, int(keep.sum())))
        same += [0] * int(keep.sum())
        a += list(first[keep])
        b += list(second[keep])
    scores += list(rng.normal(0.05, 0.1, 500))  # across groups A and B
    same += [0] * 500
    a += list(rng.choice(people["A"], 500))
    b += list(rng.choice(people["B"], 500))
    frame = evaluate.comparisons_frame(scores, same, identity_a=a, identity_b=b)
    groups = pd.DataFrame({"band": ["A"] * 40 + ["B"] * 40 + ["C"] * 2}, index=people["A"] + people["B"] + people["C"])
    return frame, groups


def test_the_group_table_finds_the_group_built_to_be_worse():
    frame, groups = synthetic_groups()
    table = evaluate.group_table(frame, groups, 0.45).set_index("group")
    assert table.loc["B", "fmr"] > 5 * table.loc["A", "fmr"] > 0  # N(0.3, 0.1) against N(0.2, 0.1) above 0.45
    assert table.loc["B", "fnmr"] > 5 * table.loc["A", "fnmr"]
    assert table.loc["A", "genuine"] == 200 and table.loc["A", "impostor"] > 1900
    assert table.loc["B", "fmr"] == pytest.approx(1 - norm.cdf(1.5), abs=0.015)
    assert pd.isna(table.loc["C", "fmr"]) and pd.isna(table.loc["C", "fnmr"])  # two people: marked, not hidden
    assert "needs at least" in table.loc["C", "fmr_reason"] and table.loc["C", "fnmr_reason"].startswith("rests on 10 same-person")
    assert table.loc[evaluate.ACROSS_GROUPS, "impostor"] == 500 and table.loc[evaluate.ACROSS_GROUPS, "genuine"] == 0
    ratios = evaluate.group_ratios(evaluate.group_table(frame, groups, 0.45)).set_index("rate")
    assert ratios.loc["fmr", "worst_group"] == "B" and ratios.loc["fmr", "best_group"] == "A"
    assert ratios.loc["fmr", "ratio"] == pytest.approx(table.loc["B", "fmr"] / table.loc["A", "fmr"])
    assert ratios.loc["fnmr", "worst_group"] == "B" and ratios.loc["fmr", "groups"] == 2  # C has no rate: left out of the ratio
    with_intervals = evaluate.group_table(frame, groups, 0.45, n_boot=100).set_index("group")
    assert with_intervals.loc["B", "fmr_low"] < table.loc["B", "fmr"] < with_intervals.loc["B", "fmr_high"]
    assert pd.isna(with_intervals.loc["C", "fmr_low"])  # no rate, no interval
    ratio = evaluate.group_ratios(evaluate.group_table(frame, groups, 0.45, n_boot=100)).set_index("rate").loc["fmr"]
    assert 1 < ratio["ratio_low"] < ratio["ratio"] < ratio["ratio_high"]  # B is worse, and the interval says so


def test_quality_aware_fnmr_drops_as_low_quality_probes_are_excluded():
    table = evaluate.quality_table(worked_frame(), 0.65, cutoffs=[0.0, 0.5]).set_index("minimum")
    assert table.loc[0.0, "kept"] == 6 and table.loc[0.5, "kept"] == 4  # 0.6 mate (quality 0.2) and an unknown one out
    assert table.loc[0.5, "excluded_share"] == pytest.approx(2 / 6)
    assert table.loc[0.0, "genuine"] == 3 and table.loc[0.5, "genuine"] == 2
    frame = worked_frame()
    frame = pd.concat([frame] * 16, ignore_index=True)  # 48 mated, 32 of good quality: enough for an FNMR
    table = evaluate.quality_table(frame, 0.65, cutoffs=[0.0, 0.5]).set_index("minimum")
    assert table.loc[0.0, "fnmr"] == pytest.approx(1 / 3) and table.loc[0.5, "fnmr"] == 0.0


def identification_frame():
    gallery = ["ann", "bob", "cat"]
    scores = np.array([[0.9, 0.2, 0.1], [0.3, 0.5, 0.6], [0.1, 0.2, 0.8], [0.4, 0.3, 0.2]])
    return evaluate.identification_searches(scores, ["ann", "bob", "cat", "dan"], gallery, failed_probe_labels=["ann"])


def test_open_set_fnir_fpir_and_cmc_on_a_worked_example():
    searches = identification_frame()
    assert int(searches["mated"].sum()) == 4 and int((~searches["mated"]).sum()) == 4
    # mates: ann 0.9 (rank 1), bob 0.5 (rank 2), cat 0.8 (rank 1), failed ann; non-mated tops: 0.2, 0.6, 0.2, 0.4
    at = evaluate.open_set_rates(searches, 0.45, rank=1)
    assert at["fnir"] == pytest.approx(2 / 4) and at["fpir"] == pytest.approx(1 / 4)
    at = evaluate.open_set_rates(searches, 0.45, rank=20)
    assert at["fnir"] == pytest.approx(1 / 4)  # only the failed probe misses
    assert evaluate.open_set_rates(searches, 0.85)["fnir"] == pytest.approx(3 / 4)
    assert evaluate.open_set_rates(searches, 0.85)["fpir"] == 0.0
    cmc = evaluate.cmc_table(searches, max_rank=3)
    assert list(cmc["identification_rate"]) == pytest.approx([2 / 4, 3 / 4, 3 / 4])
    table = evaluate.bootstrap_identification(searches, n_boot=20).set_index("figure")
    assert table.loc["FNIR at FPIR 0.001", "reason"].startswith("a rate of 0.001 needs at least 3,000 non-mated searches")
    result = identification_metrics(np.array([[0.9, 0.2, 0.1]]), ["ann"], ["ann", "bob", "cat"])
    assert set(result["fnir_at_fpir"]) == {"0.01", "0.001"} and result["rank20"] == 1.0


@pytest.mark.parametrize("content, problem", [
    ("name,sex\nann,F\n", "needs a column 'identity'"),
    ("identity\nann\n", "no metadata column"),
    ("identity,sex\nann,F\nann,M\n", "listed more than once: ann"),
    (None, "no such groups file"),
])  # fmt: skip
def test_bad_groups_files(tmp_path, content, problem):
    path = tmp_path / "groups.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(WorkbenchError, match=problem):
        evaluate.read_groups(path)


def test_recommendation_needs_enough_comparisons_for_its_target():
    rng = np.random.default_rng(5)
    people = [f"p{i}" for i in range(50)]
    mated = rng.normal(0.7, 0.1, 200)
    a, b = rng.choice(people, (2, 1000))
    b = np.where(a == b, "p_other", b)
    result = {"scores": list(mated) + list(rng.normal(0.2, 0.1, 1000)), "labels": [1] * 200 + [0] * 1000,
              "identity_a": [people[i // 4] for i in range(200)] + list(a), "identity_b": [people[i // 4] for i in range(200)] + list(b),
              "pack_id": "p@x", "accuracy": 0.99}  # fmt: skip
    ok = evaluate.recommend_threshold(result, target_fmr=1e-2, n_boot=100)
    assert ok["threshold"] is not None and ok["reason"] is None
    assert ok["threshold_interval"][0] <= ok["threshold"] <= ok["threshold_interval"][1]
    assert ok["fmr_observed"] <= 0.01 and 0 <= ok["expected_fnmr"] <= 0.1 and ok["impostor"] == 1000
    few = evaluate.recommend_threshold(result, target_fmr=1e-3, n_boot=100)
    assert few["threshold"] is None and few["threshold_observed"] is not None
    assert few["reason"].startswith("a rate of 0.001 needs at least 3,000 different-person comparisons")


# -- the command line with groups, intervals and every score ------------------------------------------


def test_cli_evaluate_pairs_with_groups_bootstrap_and_scores(face_folders, tmp_path, workspace, capsys):
    people = [f"person{i}" for i in range(6)]
    rows = [(f"{p}/a.png", f"{p}/b.png", 1) for p in people]
    rows += [(f"{a}/a.png", f"{b}/b.png", 0) for a in people for b in people if a < b]
    pairs = _pairs_csv(tmp_path / "pairs.csv", rows)
    groups = tmp_path / "groups.csv"
    groups.write_text("identity,band\n" + "".join(f"person{i},{'x' if i < 3 else 'y'}\n" for i in range(6)))
    scores = tmp_path / "scores.csv"
    argv = ["--home", str(workspace), "evaluate", "pairs", "--pairs", str(pairs), "--images", str(face_folders / "aligned"), "--aligned",
            "--groups", str(groups), "--bootstrap", "50", "--scores", str(scores), "--threshold", "0.3"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"accuracy", "auc", "eer", "tar_at_fmr", "failed_to_enrol", "groups", "group_ratios", "intervals"} <= set(result)
    assert "scores" not in result and "identity_a" not in result  # per comparison: in the scores file, not the document
    rows_by_group = {(g["column"], g["group"]): g for g in result["groups"]}
    assert set(rows_by_group) == {("band", "x"), ("band", "y"), ("band", evaluate.ACROSS_GROUPS)}
    x = rows_by_group[("band", "x")]
    assert {"column", "group", "threshold", "fmr", "fnmr", "genuine", "impostor"} <= set(x)
    assert x["threshold"] == 0.3 and x["genuine"] == 3 and x["impostor"] == 3
    assert x["fnmr"] is None and "at least 30" in x["reason"]  # six people: every rate is marked, none hidden
    assert all(i["bootstrap"] == 50 for i in result["intervals"])
    written = pd.read_csv(scores)
    assert len(written) == len(rows) and list(written.columns[:4]) == ["a", "b", "same", "score"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "per group at threshold 0.3000" in text and "worst group / best group" in text


def test_cli_evaluate_identification_with_groups(face_folders, tmp_path, workspace, capsys):
    groups = tmp_path / "groups.csv"
    groups.write_text("identity,band\n" + "".join(f"person{i},{'x' if i < 3 else 'y'}\n" for i in range(6)))
    argv = ["--home", str(workspace), "evaluate", "identification", "--gallery", str(face_folders / "gallery"), "--probes",
            str(face_folders / "probes"), "--groups", str(groups), "--json"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"rank1", "rank10", "fnir_at_fpir", "groups", "investigation", "operating_point"} <= set(result)
    assert {g["group"] for g in result["groups"]} == {"x", "y"}
    assert result["operating_point"]["source"] == "pack default"


@pytest.mark.shared_data
def test_glint24_per_group_table_by_sex(shared_data, tmp_path, workspace, capsys):
    folder = shared_data / "faces" / "glint24_aligned"
    metadata = folder / "metadata.csv"
    if not metadata.is_file():
        pytest.skip(f"{metadata} not found")
    pairs = tmp_path / "glint_pairs.csv"
    assert main(["--home", str(workspace), "evaluate", "make-pairs", str(folder), "--out", str(pairs), "--per-identity", "10"]) == 0
    capsys.readouterr()
    argv = ["--home", str(workspace), "evaluate", "pairs", "--pairs", str(pairs), "--images", str(folder), "--aligned",
            "--groups", str(metadata), "--bootstrap", "100", "--json"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    by_sex = {g["group"]: g for g in result["groups"] if g["column"] == "sex"}
    assert set(by_sex) >= {"F", "M"}
    assert by_sex["F"]["genuine"] == by_sex["M"]["genuine"] == 120  # 12 people of each sex, 10 pairs each
    assert by_sex["F"]["fnmr"] is not None and by_sex["M"]["fnmr"] is not None
    eer = next(i for i in result["intervals"] if i["figure"] == "EER")
    assert eer["identities"] == 24 and eer["low"] <= eer["value"] <= eer["high"]
