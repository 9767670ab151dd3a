"""Cases and two-person review on a real gallery of package faces."""

from __future__ import annotations

import json
import sqlite3

import pytest

from workbench import audit
from workbench.cases.investigate import search_and_record
from workbench.cases.store import CaseStore
from workbench.config import Settings
from workbench.errors import CaseError, ChoiceError, ReviewError
from workbench.gallery.enrol import enrol, items_from_folder
from workbench.gallery.store import Gallery
from workbench.types import Agreement, CaseStatus, Probe, ReviewStatus, Verdict

from conftest import face_crop, write_custody_folder
from factories import blur, save, scale_face_to


@pytest.fixture(scope="module")
def gallery_home(tmp_path_factory, session_home, engine, t1_rgb, t1_faces, tom_hanks_path, astronaut_path):
    """A workspace whose gallery holds t1's six people plus two portraits."""

    home = tmp_path_factory.mktemp("cases-home")
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    folder = write_custody_folder(home / "custody", t1_rgb, t1_faces, tom_hanks_path, astronaut_path)
    settings = Settings(home=home, user="enroller")
    with Gallery.open(settings) as gallery:
        items, problems = items_from_folder(folder)
        enrol(gallery, engine, items, problems=problems)
    return home


@pytest.fixture
def store(gallery_home, tmp_path):
    """A fresh copy of the enrolled workspace database per test, so cases start empty."""
    import shutil

    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(gallery_home / "models", target_is_directory=True)
    src = sqlite3.connect(gallery_home / "workbench.db")
    dst = sqlite3.connect(home / "workbench.db")
    src.backup(dst)
    src.close()
    dst.close()
    if (gallery_home / "index").exists():
        shutil.copytree(gallery_home / "index", home / "index")
    return CaseStore.open(Settings(home=home, user="alice"))


def as_user(store: CaseStore, user: str) -> CaseStore:
    return CaseStore(store.conn, user)


@pytest.fixture
def probe(engine, t1_rgb, t1_faces, tmp_path):
    """Face 2 of t1, blurred and small, saved as a CCTV still."""
    face = t1_faces[2]
    path = save(blur(scale_face_to(face_crop(t1_rgb, face), face.width, 40), 1.0), tmp_path / "cctv.png")
    found = engine.analyse(path)
    return Probe(probe_id="cctv.png#face1", source=str(path), faces=(found[0],))


def run_search(store: CaseStore, probe: Probe, case_ref: str = "OP-1", top: int = 5):
    """The library's own search-and-record path (the one the Workspace and the CLI use)."""
    settings = Settings(home=store.conn.execute("PRAGMA database_list").fetchone()["file"].rsplit("/", 1)[0])
    with Gallery.open(settings) as gallery:
        return search_and_record(store, gallery, case_ref, [probe], top=top)


def new_case(store: CaseStore, reference: str = "OP-1") -> None:
    store.new_case(reference, offence="robbery", purpose="identify the suspect seen on the shop CCTV", officer="DC Jones")


# -- cases ------------------------------------------------------------------------------------------


def test_search_outside_a_case_is_refused(store):
    with pytest.raises(CaseError, match="must run inside an open case"):
        store.require_open(None)
    with pytest.raises(CaseError, match="no case 'OP-404'"):
        store.require_open("OP-404")


def test_closed_case_accepts_no_new_searches(store, probe):
    new_case(store)
    store.set_status("OP-1", CaseStatus.CLOSED, reason="charged")
    with pytest.raises(CaseError, match="closed: it accepts no new searches"):
        run_search(store, probe)


@pytest.mark.parametrize("fields, problem", [
    ({"offence": "", "purpose": "p"}, "offence"),
    ({"offence": "o", "purpose": "  "}, "purpose"),
])
def test_a_case_needs_its_stated_purpose(store, fields, problem):
    with pytest.raises(CaseError, match=problem):
        store.new_case("OP-2", **fields)


def test_case_lifecycle_is_audited(store):
    new_case(store)
    with pytest.raises(CaseError, match="already exists"):
        new_case(store)
    store.set_status("OP-1", CaseStatus.CLOSED)
    store.set_status("OP-1", CaseStatus.ARCHIVED)
    with pytest.raises(CaseError, match="archived"):
        store.set_status("OP-1", CaseStatus.OPEN)
    actions = [e.action for e in audit.entries(store.conn, case_ref="OP-1")]
    assert actions == ["case.new", "case.closed", "case.archived"]
    assert [c.reference for c in store.cases("archived")] == ["OP-1"]


# -- searches ---------------------------------------------------------------------------------------


def test_search_is_recorded_exactly_as_shown(store, probe):
    new_case(store)
    run = run_search(store, probe)
    assert run.case_ref == "OP-1" and run.user == "alice" and run.top == 5 and run.threshold == pytest.approx(0.363)
    assert run.candidates[0].subject_id == "T1-2" and len(run.candidates) == 5
    assert [c.rank for c in run.candidates] == [1, 2, 3, 4, 5]
    (recorded,) = run.probes
    assert len(recorded.source_sha256) == 64 and recorded.crop_png.startswith(b"\x89PNG")
    stored = store.probe_embeddings(run.search_id)["cctv.png#face1"]
    assert stored.shape == (1, 128) and abs(float(stored[0] @ probe.faces[0].embedding) - 1) < 1e-5
    entry = audit.entries(store.conn, case_ref="OP-1")[-1]
    assert entry.action == "search.run" and entry.details["search_id"] == run.search_id
    assert entry.details["probes"][0]["candidates"][0][0] == "T1-2"
    assert "embedding" not in json.dumps(entry.details)  # nothing biometric in the audit log


def test_recorded_candidates_are_never_edited(store, probe):
    new_case(store)
    run = run_search(store, probe)
    with pytest.raises(sqlite3.DatabaseError, match="never edited"):
        store.conn.execute("UPDATE search_candidates SET subject_id = 'X' WHERE search_id = ?", (run.search_id,))


# -- two-person review ------------------------------------------------------------------------------


def test_two_person_review(store, probe):
    new_case(store)
    run = run_search(store, probe)
    alice, bob = store, as_user(store, "bob")
    top = run.candidates[0].subject_id
    second = run.candidates[1].subject_id

    alice.record_first(run.search_id, top, "possible match", "same eyebrows, nose and mouth shape")
    with pytest.raises(ReviewError, match="different person"):
        alice.record_second(run.search_id, top, "confirm", "agree")
    bob.record_second(run.search_id, top, Agreement.CONFIRM, "agree: ear shape also matches")

    alice.record_first(run.search_id, second, Verdict.NO_MATCH, "different jaw line")
    bob.record_second(run.search_id, second, "disagree", "cannot exclude: image too blurred")

    status = {r.subject_id: r.status for r in store.review(run.search_id)}
    assert status[top] == ReviewStatus.AGREED and status[second] == ReviewStatus.DISPUTED
    assert sum(s == ReviewStatus.PENDING for s in status.values()) == 3
    assert store.case_review("OP-1") == {"pending": 3, "agreed": 1, "disputed": 1}


def test_a_change_supersedes_and_reopens_the_review(store, probe):
    new_case(store)
    run = run_search(store, probe)
    alice, bob = store, as_user(store, "bob")
    subject = run.candidates[0].subject_id
    first = alice.record_first(run.search_id, subject, "possible match", "similar")
    bob.record_second(run.search_id, subject, "confirm", "agree")
    changed = alice.record_first(run.search_id, subject, "inconclusive", "on reflection the image is too poor")
    assert changed.supersedes == first.decision_id
    (item,) = [r for r in store.review(run.search_id) if r.subject_id == subject]
    assert item.status == ReviewStatus.PENDING and item.first.decision_id == changed.decision_id and item.second is None
    assert len(store.decisions(case_ref="OP-1")) == 3  # nothing was edited or removed
    with pytest.raises(sqlite3.DatabaseError, match="never edited"):
        store.conn.execute("UPDATE decisions SET verdict = 'no match' WHERE decision_id = ?", (first.decision_id,))
    actions = [e.action for e in audit.entries(store.conn, case_ref="OP-1")]
    assert actions.count("review.first") == 2 and actions.count("review.second") == 1


@pytest.mark.parametrize("call, problem", [
    (lambda s, run: s.record_first(run.search_id, "NOBODY", "no match", "x"), "not a candidate"),
    (lambda s, run: s.record_first(run.search_id, run.candidates[0].subject_id, "maybe", "x"), "verdict must be one of"),
    (lambda s, run: s.record_first(run.search_id, run.candidates[0].subject_id, "no match", "   "), "written reason"),
    (lambda s, run: as_user(s, "bob").record_second(run.search_id, run.candidates[0].subject_id, "confirm", "x"), "no first decision"),
    (lambda s, run: s.record_first(run.search_id + 99, run.candidates[0].subject_id, "no match", "x"), "no recorded search"),
])
def test_bad_review_input(store, probe, call, problem):
    new_case(store)
    run = run_search(store, probe)
    with pytest.raises((ReviewError, CaseError, ChoiceError), match=problem):
        call(store, run)
