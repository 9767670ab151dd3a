"""The gallery store: enrolment (folder and manifest), idempotence, removal, schema, index builds."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3

import numpy as np
import pytest

from workbench import audit, db
from workbench.config import Settings
from workbench.errors import GalleryError, PackMismatchError
from workbench.fileio import sha256_file
from workbench.gallery.enrol import enrol, items_from_manifest
from workbench.gallery.index import MANIFEST, read_manifest
from workbench.gallery.search import search
from workbench.gallery.store import Gallery
from workbench.types import PackId

from test_gallery_support import (  # noqa: F401  (fixtures)
    SAMPLE_SUBJECTS,
    add_synthetic,
    copy_home,
    enrol_folder,
    new_home,
    probe_face,
    sample_folder,
    sample_gallery,
    sample_home,
    save_image,
)

OTHER_PACK = PackId("other-pack", "ab" * 32)


def statuses(report_path) -> list[tuple[str, str]]:
    if report_path is None:
        return []
    with open(report_path, newline="", encoding="utf-8") as handle:
        return [(row["status"], row["reason"]) for row in csv.DictReader(handle)]


# ---------------------------------------------------------------------------------------------
# Enrolment from a folder


def test_enrolled_sample_gallery_holds_each_subject_once(sample_gallery, sample_folder):
    stats = sample_gallery.stats()
    assert (stats["subjects"], stats["images"], stats["faces"]) == (8, 8, 8)
    assert stats["not_indexed"] == 8 and stats["index"] is None and stats["search_method"] == "exact"
    hanks = sample_gallery.images_of("HANKS")
    assert len(hanks) == 1
    path = next((sample_folder / "HANKS").iterdir())
    assert hanks[0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert hanks[0]["size_bytes"] == path.stat().st_size and hanks[0]["faces_found"] == 1
    assert sample_gallery.subject("HANKS")["source"] == f"folder {sample_folder}"


def test_re_enrolling_skips_every_image_without_a_report(sample_gallery, engine, sample_folder):
    summary = enrol_folder(sample_gallery.settings.home, engine, sample_folder)
    assert summary.counts == {"enrolled": 0, "skipped": 8, "no_face": 0, "unreadable": 0, "invalid": 0}
    assert summary.analysed == 0 and summary.report is None
    assert sample_gallery.counts()["faces"] == 8


def _truncated_jpeg(path, rgb):
    save_image(path, rgb, quality=90)
    path.write_bytes(path.read_bytes()[:300])


FOLDER_CASES = [
    # (id, how to spoil the folder, expected counts besides the good subject, reason fragment)
    ("good only", lambda root, rgb: None, {}, None),
    ("empty subject folder", lambda root, rgb: (root / "EMPTY").mkdir(), {"invalid": 1}, "holds no image files"),
    ("file outside subject folders", lambda root, rgb: (root / "stray.jpg").write_bytes(b"x"), {"invalid": 1}, "outside a subject"),
    ("corrupt image", lambda root, rgb: _truncated_jpeg(root / "BAD" / "1.jpg", rgb), {"unreadable": 1}, "corrupt or truncated"),
    ("not an image", lambda root, rgb: save_text(root / "BAD" / "notes.txt"), {"unreadable": 1}, "not an image file"),
    ("empty file", lambda root, rgb: save_text(root / "BAD" / "0.jpg", ""), {"unreadable": 1}, "empty"),
    (
        "no face",
        lambda root, rgb: save_image(root / "BLANK" / "wall.png", np.full((200, 160, 3), 128, np.uint8)),
        {"no_face": 1},
        "no face",
    ),
    ("control character in subject id", lambda root, rgb: save_image(root / "A\x01B" / "x.png", rgb), {"invalid": 1}, "subject_id"),
]


def save_text(path, text="custody notes, not an image\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("case", FOLDER_CASES, ids=[c[0] for c in FOLDER_CASES])
def test_folder_enrolment_reports_bad_input_and_goes_on(case, tmp_path, session_home, engine, tom_hanks_path, t1_rgb):
    _, spoil, expected, reason = case
    root = tmp_path / "custody"
    (root / "GOOD").mkdir(parents=True)
    (root / "GOOD" / "hanks.png").write_bytes(tom_hanks_path.read_bytes())
    spoil(root, t1_rgb[:200, :200])
    home = new_home(tmp_path / "ws", session_home)
    summary = enrol_folder(home, engine, root, report_path=tmp_path / "report.csv")
    counts = {k: v for k, v in summary.counts.items() if v and k != "enrolled"}
    assert summary.counts["enrolled"] == 1 and counts == expected
    rows = statuses(summary.report)
    assert len(rows) == sum(expected.values())
    if reason:
        assert reason in rows[0][1]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root / "missing", "no such folder"),
        (lambda root: save_text(root / "file.txt") or root / "file.txt", "is a file"),
        (lambda root: root.mkdir(parents=True, exist_ok=True) or root, "holds no sub-folders"),
    ],
    ids=["missing folder", "a file", "empty folder"],
)
def test_folder_that_cannot_be_enrolled_is_an_error(make, message, tmp_path):
    from workbench.gallery.enrol import items_from_folder

    with pytest.raises(GalleryError, match=message):
        items_from_folder(make(tmp_path / "in"))


def test_image_with_several_faces_enrols_the_most_prominent(tmp_path, session_home, engine, t1_path, t1_faces):
    root = tmp_path / "custody"
    (root / "GROUP").mkdir(parents=True)
    (root / "GROUP" / "t1.jpg").write_bytes(t1_path.read_bytes())
    home = new_home(tmp_path / "ws", session_home)
    summary = enrol_folder(home, engine, root)
    assert summary.counts["enrolled"] == 1 and summary.several_faces == 1
    assert statuses(summary.report) == [("enrolled", "6 faces found: enrolled the most prominent (largest and most central)")]
    with Gallery.open(Settings(home=home)) as gallery:
        assert gallery.images_of("GROUP")[0]["faces_found"] == 6
        prominent = engine.analyse(t1_path)[0]
        found = search(gallery, prominent, top=1)
        assert found[0].score > 0.999


def test_same_bytes_for_two_subjects_enrol_once(tmp_path, session_home, engine, tom_hanks_path):
    root = tmp_path / "custody"
    for subject in ("A-1", "B-2"):
        (root / subject).mkdir(parents=True)
        (root / subject / "x.png").write_bytes(tom_hanks_path.read_bytes())
    home = new_home(tmp_path / "ws", session_home)
    summary = enrol_folder(home, engine, root)
    assert summary.counts["enrolled"] == 1 and summary.counts["skipped"] == 1
    assert "same bytes as" in statuses(summary.report)[0][1]
    summary = enrol_folder(home, engine, root)  # and across runs
    assert summary.counts["skipped"] == 2
    assert "already enrolled for subject A-1" in statuses(summary.report)[0][1]


# ---------------------------------------------------------------------------------------------
# Enrolment from a manifest


HEADER = "subject_id,image_path,name,dob,sex,ethnicity,custody_date"
MANIFEST_CASES = [
    ("good row", "P-1,img/hanks.png,Tom Example,1956-07-09,m,IC1,2020-01-31", {"enrolled": 1}, None),
    ("bad date", "P-1,img/hanks.png,,1956-13-40,M,,", {"invalid": 1}, "dob must be a date"),
    ("future date", "P-1,img/hanks.png,,2999-01-01,M,,", {"invalid": 1}, "past date"),
    ("bad sex code", "P-1,img/hanks.png,,,male,,", {"invalid": 1}, "sex must be one of"),
    ("missing image", "P-1,img/nothing.png,,,,,", {"unreadable": 1}, "no such file"),
    ("empty path", "P-1,,,,,,", {"invalid": 1}, "image_path is empty"),
    ("empty subject", ",img/hanks.png,,,,,", {"invalid": 1}, "subject_id is empty"),
    ("short row", "P-1,img/hanks.png", {"invalid": 1}, "row has 2 fields, the header has 7"),
]


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_manifest_rows(case, tmp_path, session_home, engine, tom_hanks_path, astronaut_path):
    _, row, expected, reason = case
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "hanks.png").write_bytes(tom_hanks_path.read_bytes())
    (tmp_path / "img" / "collins.png").write_bytes(astronaut_path.read_bytes())
    manifest = tmp_path / "manifest.csv"
    # A BOM, a blank line and a good second row: one bad row never stops the batch.
    manifest.write_text("\ufeff" + HEADER + "\n" + row + "\n\nP-2,img/collins.png,,,F,,\n", encoding="utf-8")
    items, problems = items_from_manifest(manifest)
    home = new_home(tmp_path / "ws", session_home)
    with Gallery.open(Settings(home=home, user="test-user")) as gallery:
        summary = enrol(gallery, engine, items, problems=problems, source=str(manifest))
        counts = {k: v for k, v in summary.counts.items() if v}
        expected = {**expected, "enrolled": expected.get("enrolled", 0) + 1}
        assert counts == expected
        assert gallery.subject("P-2")["sex"] == "F"
        if reason:
            assert reason in statuses(summary.report)[0][1]
        else:
            subject = gallery.subject("P-1")
            assert (subject["name"], subject["dob"], subject["sex"], subject["ethnicity"]) == ("Tom Example", "1956-07-09", "M", "IC1")
            image = gallery.images_of("P-1")[0]
            assert image["path"] == str(tmp_path / "img" / "hanks.png") and image["capture_date"] == "2020-01-31"


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no such manifest file"),
        ("", "is empty"),
        ("subject_id,path\nP-1,x.png\n", "missing: image_path"),
        ("subject_id,image_path,height\nP-1,x.png,180\n", "unknown: height"),
        ("subject_id,image_path,name,name\nP-1,x.png,a,b\n", "each once"),
        ("subject_id,image_path\n", "no rows"),
    ],
    ids=["missing file", "empty file", "missing column", "unknown column", "duplicate column", "header only"],
)
def test_unusable_manifest_is_an_error(text, message, tmp_path):
    manifest = tmp_path / "m.csv"
    if text is not None:
        manifest.write_text(text)
    with pytest.raises(GalleryError, match=message):
        items_from_manifest(manifest)


def test_a_later_manifest_updates_descriptive_fields(tmp_path, session_home, engine, tom_hanks_path):
    (tmp_path / "hanks.png").write_bytes(tom_hanks_path.read_bytes())
    home = new_home(tmp_path / "ws", session_home)
    manifest = tmp_path / "m.csv"
    with Gallery.open(Settings(home=home, user="test-user")) as gallery:
        for row in ("P-1,hanks.png,,,,,", "P-1,hanks.png,Corrected Name,,U,,"):
            manifest.write_text(HEADER + "\n" + row + "\n")
            items, problems = items_from_manifest(manifest)
            enrol(gallery, engine, items, problems=problems)
        assert gallery.subject("P-1")["name"] == "Corrected Name" and gallery.subject("P-1")["sex"] == "U"
        assert gallery.counts()["images"] == 1


# ---------------------------------------------------------------------------------------------
# Removal


def test_remove_deletes_everything_of_the_subject_and_records_it(sample_gallery, engine, tom_hanks_path):
    probe = engine.prominent_face(tom_hanks_path)
    assert search(sample_gallery, probe, top=1)[0].subject_id == "HANKS"
    result = sample_gallery.remove_subject("HANKS")
    assert result == {"subject_id": "HANKS", "images": 1, "faces": 1, "vacuumed": True}
    assert "HANKS" not in search(sample_gallery, probe).subject_ids
    assert sample_gallery.subject("HANKS") is None and sample_gallery.images_of("HANKS") == []
    assert sample_gallery.counts()["faces"] == 7
    entry = audit.entries(sample_gallery.conn)[-1]
    assert entry.action == "gallery.remove" and entry.user == "test-user"
    assert {k: entry.details[k] for k in ("subject_id", "images", "faces")} == {"subject_id": "HANKS", "images": 1, "faces": 1}
    assert audit.verify(sample_gallery.conn).ok
    with pytest.raises(GalleryError, match="'HANKS' is not in the gallery"):
        sample_gallery.remove_subject("HANKS")


def _stored_embedding(gallery, subject_id) -> bytes:
    return gallery.conn.execute("SELECT embedding FROM faces WHERE subject_id = ?", (subject_id,)).fetchone()[0]


def _bytes_on_disk(home) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.glob("workbench.db*")))


def test_removed_embedding_bytes_leave_the_database_file_and_the_next_index(sample_gallery):
    home = sample_gallery.settings.home
    sample_gallery.rebuild()
    removed, kept = _stored_embedding(sample_gallery, "COLLINS"), _stored_embedding(sample_gallery, "T1-1")
    sample_gallery.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert removed in _bytes_on_disk(home)
    sample_gallery.remove_subject("COLLINS")
    on_disk = _bytes_on_disk(home)
    assert removed not in on_disk and kept in on_disk
    index_bytes = lambda: b"".join(p.read_bytes() for p in (home / "index").rglob("*") if p.is_file())
    assert removed in index_bytes()  # until the next rebuild, as documented
    assert sample_gallery.stats()["removed_since_build"] == 1
    sample_gallery.rebuild()
    assert removed not in index_bytes() and kept in index_bytes()
    stats = sample_gallery.stats()
    assert stats["removed_since_build"] == 0 and stats["index"]["count"] == 7


# ---------------------------------------------------------------------------------------------
# Packs, schema


def test_faces_of_another_pack_are_refused(sample_gallery, engine, tom_hanks_path):
    probe = engine.prominent_face(tom_hanks_path).replace(pack_id=OTHER_PACK)
    with pytest.raises(PackMismatchError) as caught:
        search(sample_gallery, probe)
    assert OTHER_PACK.short in str(caught.value) and engine.pack_id.short in str(caught.value)
    with pytest.raises(PackMismatchError, match="other-pack"):
        add_synthetic(sample_gallery.settings.home, OTHER_PACK, identities=2)
    assert sample_gallery.counts()["faces"] == 8  # the refused batch left nothing behind


def test_schema_is_versioned_and_migrates_an_older_workspace(tmp_path):
    path = tmp_path / "workbench.db"
    conn = sqlite3.connect(path)
    conn.executescript(db.MIGRATIONS[0][2] + "PRAGMA user_version = 1;")
    conn.close()
    conn = db.connect(path)
    audit.append(conn, user="u", action="before", details={})
    conn.close()
    with Gallery.open(Settings(home=tmp_path)) as gallery:
        assert db.schema_version(gallery.conn) == len(db.MIGRATIONS) >= 2
        assert gallery.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert gallery.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert audit.entries(gallery.conn)[0].action == "before"
        assert gallery.stats()["subjects"] == 0 and gallery.pack_id is None


# ---------------------------------------------------------------------------------------------
# Index builds


def test_rebuild_swaps_in_a_complete_build_and_cleans_up(sample_gallery):
    home = sample_gallery.settings.home
    (home / "index" / ".build-crashed.tmp").mkdir(parents=True)  # as a killed rebuild leaves it
    first = sample_gallery.rebuild()
    manifest = read_manifest(home / "index")
    assert manifest == first
    assert manifest["count"] == 8 and manifest["pack_id"] == str(sample_gallery.pack_id)
    assert manifest["n_trees"] == sample_gallery.settings.index_n_trees and manifest["max_face_id"] == 8
    for name, info in manifest["files"].items():
        assert sha256_file(home / "index" / manifest["folder"] / name) == info["sha256"]
    second = sample_gallery.rebuild(n_trees=4)
    folders = sorted(p.name for p in (home / "index").iterdir() if p.is_dir())
    assert folders == [second["folder"]] and second["n_trees"] == 4
    assert sample_gallery.verify_index() == []
    actions = [e.action for e in audit.entries(sample_gallery.conn)]
    assert actions.count("gallery.rebuild") == 2
    details = audit.entries(sample_gallery.conn)[-1].details
    assert set(details) == {"build_id", "count", "n_trees", "ann_sha256", "seconds"}


def test_index_problems_fall_back_to_exact_search(sample_gallery, engine, tom_hanks_path):
    sample_gallery.rebuild()
    index_dir = sample_gallery.settings.index_dir
    (index_dir / MANIFEST).write_text("{ not json")
    probe = engine.prominent_face(tom_hanks_path)
    found = search(sample_gallery, probe, exact=False)
    assert found[0].subject_id == "HANKS" and found.method == "exact"
    assert "unreadable" in sample_gallery.stats()["index_problem"]
    sample_gallery.rebuild()  # repairs it
    assert sample_gallery.stats()["index_problem"] is None
    manifest = json.loads((index_dir / MANIFEST).read_text())
    (index_dir / manifest["folder"] / "faces.ann").write_bytes(b"truncated")
    assert sample_gallery.verify_index()
    with Gallery.open(sample_gallery.settings) as fresh:
        assert "the manifest says" in fresh.stats()["index_problem"]


def test_enrolments_after_a_build_are_searched_exactly_and_merged(sample_gallery):
    sample_gallery.rebuild()
    probes, subjects = add_synthetic(sample_gallery.settings.home, sample_gallery.pack_id, identities=50, seed=3)
    stats = sample_gallery.stats()
    assert stats["not_indexed"] == 50 and stats["faces"] == 58
    found = search(sample_gallery, probe_face(probes[7], sample_gallery.pack_id), exact=False)
    assert found.method == "index" and found[0].subject_id == subjects[7]
    assert found.gallery_faces == 58


def test_workspace_copy_keeps_working(sample_home, tmp_path):
    home = copy_home(sample_home, tmp_path / "copy")
    with Gallery.open(Settings(home=home)) as gallery:
        assert set(SAMPLE_SUBJECTS) == {r[0] for r in gallery.conn.execute("SELECT subject_id FROM subjects")}
        assert np.isclose(np.linalg.norm(np.frombuffer(_stored_embedding(gallery, "HANKS"), "<f4")), 1.0, atol=1e-3)


def test_rebuilding_an_emptied_gallery_deletes_the_index(sample_gallery):
    sample_gallery.rebuild()
    for subject in SAMPLE_SUBJECTS:
        sample_gallery.remove_subject(subject, vacuum=False)
    manifest = sample_gallery.rebuild()
    index_dir = sample_gallery.settings.index_dir
    assert manifest["count"] == 0 and read_manifest(index_dir) is None
    assert [p for p in index_dir.iterdir() if p.is_dir()] == []
    stats = sample_gallery.stats()
    assert stats["faces"] == 0 and stats["index"] is None and stats["removed_since_build"] == 0


def test_an_index_that_does_not_match_the_store_is_not_used(sample_gallery, tmp_path, session_home, engine, sample_folder, tom_hanks_path):
    """A database replaced under an existing index: the same face ids now name other faces."""
    sample_gallery.rebuild()
    home = sample_gallery.settings.home
    other = new_home(tmp_path / "other", session_home)
    add_synthetic(other, engine.pack_id, identities=8)  # 8 other faces with face ids 1..8
    (home / "workbench.db").unlink()
    for suffix in ("-wal", "-shm"):
        (home / f"workbench.db{suffix}").unlink(missing_ok=True)
    for path in other.glob("workbench.db*"):
        (home / path.name).write_bytes(path.read_bytes())
    with Gallery.open(Settings(home=home)) as replaced:
        stats = replaced.stats()
        assert "does not match the stored faces" in stats["index_problem"] and stats["index"] is None
        assert stats["not_indexed"] == 8
        found = search(replaced, engine.prominent_face(tom_hanks_path), exact=False)
        assert found.method == "exact" and all(s.startswith("SYN-") for s in found.subject_ids)
