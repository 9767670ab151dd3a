"""Operating threshold versions per pack, the warning below them, and scores calibrated against
non-mated comparisons: through the library, the command line and the case report."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from workbench import Workspace, audit
from workbench.config import Settings
from workbench.demo import DEMO_CASE, build_demo_workspace
from workbench.errors import AccessError, WorkbenchError
from workbench.thresholds import (
    QUANTILE_LEVELS,
    Calibration,
    fmr_phrase,
    fmr_short,
    operating_point,
    search_notes,
)

# -- hand-made calibrations: what a score means ---------------------------------------------------


def hand_calibration(scores, *, pairs=None, kept=None) -> Calibration:
    """A calibration holding ``scores`` (its top ``kept`` exactly, quantiles of all)."""
    scores = np.sort(np.asarray(scores, np.float32))[::-1]
    top = scores[: kept or len(scores)]
    return Calibration(
        calibration_id=7, pack_id="p@" + "0" * 64, time_utc="2025-03-01T10:00:00+00:00", user="tech", faces=100, subjects=100,
        pairs=pairs or len(scores), exhaustive=True, max_pairs=2_000_000, seed=0, gallery_state={},
        top_scores=top, quantiles=np.quantile(scores.astype(np.float64), QUANTILE_LEVELS),
    )  # fmt: skip


def test_fmr_at_a_score_counts_the_non_mated_comparisons_at_or_above_it():
    cal = hand_calibration(np.linspace(0.0, 0.999, 1000))  # 1000 scores 0.000, 0.001, ..., 0.999
    assert cal.fmr_at(0.999) == pytest.approx(1 / 1000)
    assert cal.fmr_at(0.990) == pytest.approx(10 / 1000)
    assert cal.fmr_at(1.0) == 0.0
    assert cal.fmr_at(-1.0) == 1.0
    assert cal.score_at_fmr(0.01) == pytest.approx(0.989, abs=1e-6)  # just above the 11th highest: 10 reach it
    assert cal.fmr_at(cal.score_at_fmr(0.01)) == pytest.approx(0.01)
    assert cal.score_at_fmr(1e-4) is None  # 1000 comparisons cannot say anything about 1 in 10,000


def test_beyond_the_kept_tail_the_quantiles_answer():
    cal = hand_calibration(np.linspace(0.0, 0.999, 1000), kept=100)
    assert cal.fmr_at(0.95) == pytest.approx(50 / 1000)  # in the exact tail
    assert cal.fmr_at(0.5) == pytest.approx(0.5, abs=0.002)  # from the quantiles


@pytest.mark.parametrize("fmr, pairs, expected", [
    (1 / 19_873, 2_000_000, "about 1 in 20,000 unrelated faces score this high (calibrated on 2,000,000 comparisons, 2025-03-01)"),
    (0.0, 28, "fewer than 1 in 28 unrelated faces score this high — too few comparisons to say more "
              "(calibrated on 28 comparisons, 2025-03-01)"),
    (2 / 28, 28, "about 1 in 14 unrelated faces score this high (calibrated on 28 comparisons, 2025-03-01; "
                 "rests on 2 comparisons that high)"),
    (0.25, 28, "about 2 in 10 unrelated faces score this high (calibrated on 28 comparisons, 2025-03-01; "
               "rests on 7 comparisons that high)"),
    (None, None, "not calibrated: no estimate of how often unrelated faces score this high"),
])  # fmt: skip
def test_the_phrase_people_read(fmr, pairs, expected):
    assert fmr_phrase(fmr, pairs=pairs, time_utc="2025-03-01T10:00:00+00:00") == expected


def test_the_short_phrase_for_tables():
    assert fmr_short(0.0, 28) == "fewer than 1 in 28 — too few comparisons to say more"
    assert fmr_short(1 / 20_000, 2_000_000) == "about 1 in 20,000"


# -- which threshold a search uses, and what it says ------------------------------------------------


def test_operating_point_order():
    from workbench.thresholds import ThresholdVersion

    version = ThresholdVersion(3, "p@" + "0" * 64, 0.45, "study 12", "tech", "2025-03-01T10:00:00+00:00")
    assert operating_point(0.3, version, settings_threshold=0.4, pack_default=0.363).source == "given"
    assert operating_point(None, version, settings_threshold=0.4, pack_default=0.363).threshold == 0.45
    assert operating_point(None, None, settings_threshold=0.4, pack_default=0.363).source == "settings"
    assert operating_point(None, None, pack_default=0.363).source == "pack default"
    notes, warnings = search_notes(operating_point(0.3, version), mode="investigation", pack_id=version.pack_id,
                                   calibration=hand_calibration(np.linspace(0, 0.999, 1000)))  # fmt: skip
    assert notes == [] and len(warnings) == 1
    assert "0.300 is lower than 0.450 (threshold version 3" in warnings[0] and "study 12" in warnings[0]
    assert "about 7 in 10 unrelated faces score 0.300 or more" in warnings[0]
    assert search_notes(operating_point(0.5, version), mode="identification", pack_id=version.pack_id) == ([], [])
    notes, warnings = search_notes(operating_point(None, None, pack_default=0.363), mode="identification", pack_id=version.pack_id)
    assert warnings == [] and "No operating threshold has been set for pack p@000000000000" in notes[0] and "0.363" in notes[0]


# -- through a workspace ---------------------------------------------------------------------------------


@pytest.fixture
def ws(workspace, engine):
    """A fresh demo workspace (8 subjects enrolled, case DEMO-1 open), opened by its owner.

    Built anew for each test rather than copied: a copy would share the audit chain's
    workspace id, and so its key and checkpoints, with the original."""
    with Workspace(Settings(home=workspace, user="owner"), engine=engine) as ws:
        ws.built = {k: str(v) for k, v in build_demo_workspace(ws).items() if isinstance(v, str)}
        yield ws


def test_a_pack_without_a_set_threshold_says_so_and_candidates_carry_their_fmr(ws):
    run = ws.search_files(DEMO_CASE, [ws.built["probe"]], top=5)
    assert run.threshold_version is None and run.warnings == ()
    assert "No operating threshold has been set" in run.notes[0] and "pack default 0.363" in run.notes[0]
    assert run.calibration["pairs"] == 28 and run.calibration["exhaustive"]  # the demo: 8 subjects, 8 * 7 / 2 pairs
    assert all(c.fmr_at_score is not None for c in run.candidates)
    assert run.candidates[0].fmr_at_score == 0.0  # the mate outscores every non-mated pair of the gallery
    document = run.as_dict()
    assert document["threshold_version"] is None
    assert all("fmr_at_score" in c for c in document["candidates"])
    again = ws.search_run(run.search_id)  # as recorded
    assert again.notes == run.notes and [c.fmr_at_score for c in again.candidates] == [c.fmr_at_score for c in run.candidates]
    phrase = fmr_phrase(again.candidates[0].fmr_at_score, pairs=28, time_utc=again.calibration["time_utc"])
    assert phrase.startswith("fewer than 1 in 28 unrelated faces score this high — too few comparisons to say more")


def test_identification_mode_without_a_set_threshold_uses_the_pack_default_and_says_so(ws):
    run = ws.search_files(DEMO_CASE, [ws.built["probe"]], top=5, mode="identification")
    assert run.threshold == pytest.approx(0.363) and all(c.score >= 0.363 for c in run.candidates)
    assert "identification mode listed only candidates at or above the pack default 0.363" in run.notes[0]


def test_threshold_versions_and_the_warning_below_them(ws, tmp_path):
    evaluation = tmp_path / "rec.json"
    evaluation.write_text(json.dumps({"pack_id": str(ws.engine.pack_id), "target_fmr": 0.001, "threshold": 0.44, "genuine": 900}))
    first = ws.set_threshold(0.40, reason="first study")
    second = ws.set_threshold(0.45, reason="study 12: FMR 1e-3 on 40,000 pairs", evaluation=evaluation)
    assert second.previous == 0.40 and second.version == first.version + 1
    assert second.evaluation_sha256 and second.evaluation == {"pack_id": str(ws.engine.pack_id), "target_fmr": 0.001, "threshold": 0.44}
    assert [v.threshold for v in ws.threshold_history()] == [0.40, 0.45]
    assert ws.current_threshold() == second and ws.operating_point().threshold == 0.45

    at_version = ws.search_files(DEMO_CASE, [ws.built["probe"]], top=5)
    assert at_version.threshold == 0.45 and at_version.threshold_version == second.version
    assert at_version.warnings == () and at_version.notes == ()

    below = ws.search_files(DEMO_CASE, [ws.built["probe"]], top=5, threshold=0.30)
    assert below.threshold == 0.30 and below.threshold_version == second.version
    assert len(below.warnings) == 1 and "Searched below the set operating point: threshold 0.300 is lower than 0.450" in below.warnings[0]
    recorded = ws.search_run(below.search_id)
    assert recorded.warnings == below.warnings and recorded.as_dict()["warnings"] == list(below.warnings)

    replayed = ws.replay(below.search_id).replayed
    assert replayed.threshold_version == second.version and replayed.warnings == below.warnings

    entries = [e for e in audit.entries(ws.cases.conn) if e.action in ("threshold.set", "search.run", "calibration.compute")]
    sets = [e for e in entries if e.action == "threshold.set"]
    assert [e.details["threshold"] for e in sets] == [0.40, 0.45] and sets[1].details["evaluation_sha256"] == second.evaluation_sha256
    runs = {e.details["search_id"]: e for e in entries if e.action == "search.run"}
    assert runs[below.search_id].details["threshold_version"] == second.version and runs[below.search_id].details["warnings"]
    assert ws.verify_audit().ok


def test_the_report_shows_the_version_each_candidates_fmr_and_the_warning(ws, tmp_path):
    ws.set_threshold(0.45, reason="study 12")
    ws.search_files(DEMO_CASE, [ws.built["probe"]], top=3, threshold=0.30)
    out = tmp_path / "report.html"
    ws.export_report(DEMO_CASE, out)
    text = out.read_text()
    assert "threshold version 1" in text
    assert "Warning, search 1: Searched below the set operating point: threshold 0.300 is lower than 0.450" in text
    assert "Unrelated faces scoring this high" in text and "fewer than 1 in 28 — too few comparisons to say more" in text
    assert "calibration 1, 28 comparisons of every pair of the gallery" in text
    assert "enrolled twice under two ids" in text


@pytest.mark.parametrize("value, reason, evaluation, problem", [
    (1.5, "why", None, r"cosine similarity in \[-1, 1\]"),
    ("high", "why", None, r"cosine similarity in \[-1, 1\]"),
    (0.4, "  ", None, "say why"),
    (0.4, "why", "missing.json", "no such evaluation file"),
    (0.4, "why", "other-pack.json", "an evaluation of another pack is no evidence"),
])  # fmt: skip
def test_bad_threshold_versions_are_refused(ws, tmp_path, value, reason, evaluation, problem):
    (tmp_path / "other-pack.json").write_text(json.dumps({"pack_id": "buffalo_l@" + "1" * 64}))
    with pytest.raises(WorkbenchError, match=problem):
        ws.set_threshold(value, reason=reason, evaluation=tmp_path / evaluation if evaluation else None)
    assert ws.threshold_history() == []


def test_versions_and_calibrations_are_never_edited(ws):
    ws.set_threshold(0.45, reason="study 12")
    ws.calibrate()
    for sql in ("UPDATE threshold_versions SET threshold = 0.1", "DELETE FROM threshold_versions",
                "UPDATE score_calibrations SET pairs = 1", "DELETE FROM score_calibrations"):  # fmt: skip
        with pytest.raises(sqlite3.DatabaseError, match="never"):
            ws.cases.conn.execute(sql)


def test_calibration_sampled_when_the_gallery_has_more_pairs_than_allowed(ws):
    full = ws.calibrate()
    sampled = ws.calibrate(max_pairs=10, seed=1)
    assert full.exhaustive and full.pairs == 28 and full.faces == 8 and full.subjects == 8
    assert not sampled.exhaustive and sampled.pairs == 10
    assert ws.calibration().calibration_id == sampled.calibration_id
    assert float(full.top_scores.max()) < 0.5  # eight different people: no pair scores like a mate


def test_a_changed_gallery_is_recalibrated_before_the_next_search(ws):
    first = ws.search_files(DEMO_CASE, [ws.built["probe"]], top=2)
    ws.remove_subject("DEMO-HANKS", vacuum=False)
    second = ws.search_files(DEMO_CASE, [ws.built["probe"]], top=2)
    assert first.calibration["pairs"] == 28 and second.calibration["pairs"] == 21  # 7 subjects left
    assert second.calibration["calibration_id"] != first.calibration["calibration_id"]
    third = ws.search_files(DEMO_CASE, [ws.built["probe"]], top=2)
    assert third.calibration["calibration_id"] == second.calibration["calibration_id"]  # nothing changed: reused


def test_only_technical_staff_set_thresholds(ws, engine):
    ws.set_user("ana", ["analyst"])
    ws.set_user("tech", ["technical"])
    with Workspace(Settings(home=ws.home, user="ana"), engine=engine) as analyst:
        with pytest.raises(AccessError, match="settings.change"):
            analyst.set_threshold(0.2, reason="more candidates please")
        assert analyst.threshold_history() == []  # reading is allowed
    with Workspace(Settings(home=ws.home, user="tech"), engine=engine) as tech:
        assert tech.set_threshold(0.45, reason="study 12").set_by == "tech"


# -- the command line -----------------------------------------------------------------------------------


def cli(home, *args, user="owner"):
    return subprocess.run([sys.executable, "-m", "workbench", "--home", str(home), "--user", user, *map(str, args)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_cli_threshold_set_history_and_the_warning(ws, tmp_path):
    home, probe = ws.home, ws.built["probe"]
    ws.close()
    none = json.loads(cli(home, "search", probe, "--case", DEMO_CASE, "--top", "3", "--json").stdout)
    assert none["threshold_version"] is None and none["notes"] and none["warnings"] == []
    assert all(isinstance(c["fmr_at_score"], float) for c in none["candidates"])

    proc = cli(home, "threshold", "set", "0.45", "--reason", "study 12", "--json")
    assert proc.returncode == 0, proc.stderr
    version = json.loads(proc.stdout)
    assert version["threshold"] == 0.45 and version["set_by"] == "owner" and version["version"] == 1
    history = json.loads(cli(home, "threshold", "history", "--json").stdout)
    assert [v["threshold"] for v in history["versions"]] == [0.45]
    assert "version 1  0.4500" in cli(home, "threshold", "history").stdout

    document = json.loads(cli(home, "search", probe, "--case", DEMO_CASE, "--top", "3", "--threshold", "0.3", "--json").stdout)
    assert document["threshold_version"] == 1 and "lower than 0.450" in document["warnings"][0]
    text = cli(home, "search", probe, "--case", DEMO_CASE, "--top", "3", "--threshold", "0.3").stdout
    assert text.startswith("WARNING: Searched below the set operating point") and "threshold version 1" in text
    assert "fewer than 1 in 28 unrelated faces score this high — too few comparisons to say more" in text

    shown = cli(home, "threshold", "show").stdout
    assert "searches use threshold 0.4500 (set version 1)" in shown and "28 non-mated comparisons" in shown

    proc = cli(home, "threshold", "set", "2", "--reason", "x")
    assert proc.returncode == 1 and "[-1, 1]" in proc.stderr
    proc = cli(home, "threshold", "set", "0.4")
    assert proc.returncode == 2  # --reason is required


def test_cli_recommend_then_set_from_its_evaluation(ws, tmp_path):
    import hashlib

    from workbench.ui.tuning import package_set

    labelled = package_set(ws.engine, tmp_path / "set")
    home = ws.home
    ws.close()
    proc = cli(home, "threshold", "recommend", "--pairs", labelled.pairs_csv, "--images", labelled.images_dir, "--target-fmr", "0.01",
               "--groups", labelled.groups_csv, "--bootstrap", "50", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["threshold"] is None and rec["threshold_observed"] is not None  # 90 different-person pairs: too few for 1e-2
    assert rec["reason"].startswith("a rate of 0.01 needs at least 300 different-person comparisons")
    assert {g["group"] for g in rec["groups"]} >= {"left", "right"} and rec["current_version"] is None
    evaluation = tmp_path / "rec.json"
    evaluation.write_text(proc.stdout)
    value = f"{rec['threshold_observed']:.3f}"
    proc = cli(home, "threshold", "set", value, "--reason", "test only: package images", "--evaluation", evaluation, "--json")
    assert proc.returncode == 0, proc.stderr
    version = json.loads(proc.stdout)
    assert version["evaluation_sha256"] == hashlib.sha256(evaluation.read_bytes()).hexdigest()
    assert version["evaluation"]["target_fmr"] == 0.01 and version["evaluation"]["threshold"] is None
    text = cli(home, "threshold", "recommend", "--gallery", labelled.gallery_dir, "--probes", labelled.probes_dir, "--target-fpir", "0.1",
               "--bootstrap", "20").stdout  # fmt: skip
    assert "target FPIR 0.1" in text and f"set now: version 1, {float(value):.4f}" in text
