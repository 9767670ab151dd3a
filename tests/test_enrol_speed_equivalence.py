"""Enrolment's fast path (files read, hashed and decoded ahead in background threads, each batch
analysed in parts side by side on one-thread engines, embeddings batched across images) stores and
reports exactly what enrolling image by image would.

The custody folder mixes what a real one holds: good portraits, a truncated JPEG and a text file
in the middle of a batch, a photo without a face, a group photo and the same bytes under two
subjects. Batches of 3 make every kind of row fall inside a batch, not only at its edges.
"""

from __future__ import annotations

import csv
import shutil
import threading

import numpy as np
import pytest

from workbench.config import Settings
from workbench.engine import FaceEngine
from workbench.gallery.enrol import enrol, items_from_folder
from workbench.gallery.store import Gallery

from conftest import face_crop
from test_gallery_support import enrol_folder, new_home, save_image

BATCH = 3
#: rows the report must hold, in this order: per batch, the rows decided on reading (same bytes
#: twice) first, then those decided on decoding and analysis, batch after batch.
EXPECTED_REPORT = [
    ("B-CORRUPT", "unreadable"),  # batch 1: A-GOOD, B-CORRUPT, C-HANKS
    ("F-SAME-BYTES", "skipped"),  # batch 2: D-NO-FACE, E-GROUP, F-SAME-BYTES
    ("D-NO-FACE", "no_face"),
    ("E-GROUP", "enrolled"),
    ("H-NOT-AN-IMAGE", "unreadable"),  # batch 3: G-ASTRONAUT, H-NOT-AN-IMAGE
]
ENROLLED = {"A-GOOD", "C-HANKS", "E-GROUP", "G-ASTRONAUT"}


@pytest.fixture(scope="module")
def custody(tmp_path_factory, t1_path, t1_rgb, t1_faces, tom_hanks_path, astronaut_path):
    root = tmp_path_factory.mktemp("mixed") / "custody"
    save_image(root / "A-GOOD" / "a.png", face_crop(t1_rgb, t1_faces[2]))
    corrupt = save_image(root / "B-CORRUPT" / "b.jpg", t1_rgb, quality=90)
    corrupt.write_bytes(corrupt.read_bytes()[:400])
    (root / "C-HANKS").mkdir()
    shutil.copy(tom_hanks_path, root / "C-HANKS" / "c.png")
    save_image(root / "D-NO-FACE" / "d.png", np.full((240, 200, 3), 128, np.uint8))
    (root / "E-GROUP").mkdir()
    shutil.copy(t1_path, root / "E-GROUP" / "e.jpg")
    (root / "F-SAME-BYTES").mkdir()
    shutil.copy(tom_hanks_path, root / "F-SAME-BYTES" / "f.png")
    (root / "G-ASTRONAUT").mkdir()
    shutil.copy(astronaut_path, root / "G-ASTRONAUT" / "g.png")
    (root / "H-NOT-AN-IMAGE").mkdir()
    (root / "H-NOT-AN-IMAGE" / "h.jpg").write_text("custody notes, not an image\n")
    return root


def report_rows(summary) -> list[dict]:
    with open(summary.report, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def stored(home) -> dict[str, dict]:
    """subject id -> what the gallery holds for its image: path, sha256, faces found, box, embedding."""
    with Gallery.open(Settings(home=home)) as gallery:
        rows = gallery.conn.execute(
            """SELECT f.subject_id, i.path, i.sha256, i.faces_found, f.x1, f.y1, f.x2, f.y2, f.embedding
               FROM faces f JOIN custody_images i USING (image_id) ORDER BY f.face_id"""
        ).fetchall()
    return {
        r[0]: {"path": r[1], "sha256": r[2], "faces_found": r[3], "box": np.array(r[4:8]), "embedding": np.frombuffer(r[8], np.float32)}
        for r in rows
    }


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, session_home, engine, custody):
    """The mixed folder enrolled three ways, each into a fresh workspace: read-ahead and two
    analysis lanes (2), read-ahead and one lane ("ahead, one lane"), all in the calling thread (0)."""
    runs = {}
    for name, read_ahead, lanes in ((2, 2, 2), ("ahead, one lane", 2, 1), (0, 0, 1)):
        home = new_home(tmp_path_factory.mktemp(f"read-ahead-{read_ahead}-lanes-{lanes}") / "ws", session_home)
        summary = enrol_folder(home, engine, custody, batch_size=BATCH, read_ahead=read_ahead, lanes=lanes)
        runs[name] = (home, summary)
    return runs


def test_each_image_enrols_the_face_it_gives_analysed_alone(enrolled, engine, custody):
    home, summary = enrolled[2]
    assert summary.counts == {"enrolled": 4, "skipped": 1, "no_face": 1, "unreadable": 2, "invalid": 0}
    faces = stored(home)
    assert set(faces) == ENROLLED
    for subject, face in faces.items():
        alone = engine.analyse(custody / face["path"].split("/custody/", 1)[1])
        assert face["faces_found"] == len(alone)
        np.testing.assert_allclose(face["box"], alone[0].bbox_xyxy, atol=1e-3)
        cosine = float(face["embedding"] @ alone[0].embedding)
        assert cosine > 0.99999, (subject, cosine)


@pytest.mark.parametrize("fast", [2, "ahead, one lane"])
def test_reading_ahead_and_lanes_store_and_report_the_same_as_one_thread(enrolled, engine, fast):
    (ahead_home, ahead), (plain_home, plain) = enrolled[fast], enrolled[0]
    assert ahead.counts == plain.counts and ahead.analysed == plain.analysed == 5
    assert report_rows(ahead) == report_rows(plain)
    with_threads, without = stored(ahead_home), stored(plain_home)
    assert with_threads.keys() == without.keys()
    for subject in with_threads:
        assert with_threads[subject]["sha256"] == without[subject]["sha256"]
        assert with_threads[subject]["faces_found"] == without[subject]["faces_found"]
        np.testing.assert_array_equal(with_threads[subject]["box"], without[subject]["box"])
        cosine = float(with_threads[subject]["embedding"] @ without[subject]["embedding"])
        assert cosine > 0.99999, (subject, cosine)  # one-thread sessions may round the last bit differently
    if fast == 2:
        assert len(engine.lanes_made) >= 2 and any(lane.detection_stats.images for lane in engine.lanes_made)  # lanes ran
        assert all(lane.pack_id == engine.pack_id for lane in engine.lanes_made)


def test_report_rows_come_in_a_fixed_order_naming_each_refused_file(enrolled, custody):
    _, summary = enrolled[2]
    rows = report_rows(summary)
    assert [(r["subject_id"], r["status"]) for r in rows] == EXPECTED_REPORT
    by_subject = {r["subject_id"]: r for r in rows}
    assert by_subject["B-CORRUPT"]["path"] == str(custody / "B-CORRUPT" / "b.jpg")
    assert "corrupt or truncated" in by_subject["B-CORRUPT"]["reason"]
    assert by_subject["H-NOT-AN-IMAGE"]["path"] == str(custody / "H-NOT-AN-IMAGE" / "h.jpg")
    # C-HANKS was stored with batch 1, before batch 2 was screened, as without read-ahead
    assert by_subject["F-SAME-BYTES"]["reason"].startswith("same bytes already enrolled for subject C-HANKS")


def test_a_re_run_skips_the_enrolled_images_and_retries_only_the_others(enrolled, engine, custody):
    home, _ = enrolled[2]
    summary = enrol_folder(home, engine, custody, batch_size=BATCH)
    # the four enrolled images and F (C's bytes) are skipped by sha256; only the photo without a
    # face is analysed again, and the two unreadable files are refused again
    assert summary.counts == {"enrolled": 0, "skipped": 5, "no_face": 1, "unreadable": 2, "invalid": 0}
    assert summary.analysed == 1


def test_a_re_run_with_nothing_new_to_analyse_loads_no_lane(enrolled, session_home, custody):
    """Lanes (one-thread engines, 0.1 s and their sessions' memory each) are made only for a
    batch of two or more images to analyse: here only the photo without a face is analysed again."""
    home, _ = enrolled[2]
    fresh = FaceEngine.from_settings(Settings(home=session_home))
    summary = enrol_folder(home, fresh, custody, batch_size=BATCH, lanes=2)
    assert summary.analysed == 1 and summary.counts["enrolled"] == 0
    assert fresh.lanes_made == []


class Interrupted(KeyboardInterrupt):
    pass


def test_ctrl_c_after_a_batch_keeps_it_stops_the_readers_and_a_re_run_finishes(tmp_path, session_home, engine, custody):
    home = new_home(tmp_path / "ws", session_home)
    items, problems = items_from_folder(custody)

    def interrupt_after_first_batch(done, total):
        raise Interrupted

    with Gallery.open(Settings(home=home, user="t")) as gallery:
        with pytest.raises(Interrupted):
            enrol(gallery, engine, items, problems=problems, batch_size=BATCH, progress=interrupt_after_first_batch)
        assert {row["subject_id"] for row in gallery.conn.execute("SELECT subject_id FROM faces")} == {"A-GOOD", "C-HANKS"}
    assert not [t for t in threading.enumerate() if t.name.startswith("enrol-read")]
    summary = enrol_folder(home, engine, custody, batch_size=BATCH)
    assert summary.counts["enrolled"] == len(ENROLLED) - 2
    assert set(stored(home)) == ENROLLED
