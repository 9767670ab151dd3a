"""The gallery on real faces from ../shared/data (skipped with the reason when it is absent).

Gallery: the 221 ISS astronaut portraits (one sub-folder per astronaut, made here) plus
``fr_examples/train``. Probes: ``fr_examples/test`` and the faces of the three ``iss_onboard``
photos. Rank-1 is printed (run with ``-s`` to see it) and held above a floor.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config import Settings
from workbench.gallery.store import EnrolledImage, Gallery, SubjectRecord
from workbench.gallery.search import search_many

from test_gallery_support import add_synthetic, enrol_folder, new_home, probe_face

pytestmark = pytest.mark.shared_data

#: probe file -> the people in it (gallery subject ids)
FR_PROBES = {
    "alex_lacamoire1.jpg": {"alex_lacamoire"},
    "johnsnow_test1.jpg": {"kit_harington"},
    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
    "obama1.jpg": {"obama"},
    "obama_and_biden.jpg": {"obama", "biden"},
}


def _onboard_truth(folder) -> dict[str, set[str]]:
    """iss_onboard photo -> astronauts in it, from matches_all_flickr_ids.txt (only photos present)."""
    names = {}
    for line in (folder / "matches_all_flickr_ids.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("|")
        if len(parts) >= 2:
            names[parts[0]] = {n.strip().replace(" ", "_") for n in parts[1].split(",")}
    truth = {}
    for photo in sorted(folder.glob("*_o.jpg")):
        flickr_id = photo.stem.rsplit("_", 2)[-2]
        truth[photo.name] = names[flickr_id]
    return truth


@pytest.fixture(scope="module")
def real_home(tmp_path_factory, session_home, engine, shared_data):
    faces = shared_data / "faces"
    custody = tmp_path_factory.mktemp("real-custody")
    for portrait in sorted((faces / "iss_portraits").glob("*.jpg")):
        (custody / portrait.stem).mkdir()
        (custody / portrait.stem / portrait.name).symlink_to(portrait)
    for person in sorted((faces / "fr_examples" / "train").iterdir()):
        (custody / person.name).mkdir()
        for image in sorted(person.iterdir()):
            (custody / person.name / image.name).symlink_to(image)
    home = new_home(tmp_path_factory.mktemp("real") / "ws", session_home)
    summary = enrol_folder(home, engine, custody)
    print(f"\nenrolled {summary.counts} at {summary.images_per_s:.1f} images/s")
    assert summary.counts["enrolled"] >= 225 and summary.counts["unreadable"] == 0
    return home


def _rank1(gallery, engine, photos: dict) -> tuple[int, int, list[str]]:
    """(people found at rank 1 by some face of their photo, people in all, lines to print)."""
    hits, total, lines = 0, 0, []
    for photo, people in photos.items():
        faces = engine.analyse(photo)
        results = search_many(gallery, faces, top=10) if faces else []
        tops = [r[0] for r in results]
        found = people & {c.subject_id for c in tops}
        hits += len(found)
        total += len(people)
        lines.append(f"{photo.name}: {len(faces)} face(s), people {sorted(people)}, rank-1 hits {sorted(found)}, "
                     f"top scores {[round(c.score, 3) for c in tops]}")
    return hits, total, lines


def test_rank1_on_real_probes(real_home, engine, shared_data):
    faces = shared_data / "faces"
    fr = {faces / "fr_examples" / "test" / name: people for name, people in FR_PROBES.items()}
    onboard_dir = faces / "iss_onboard"
    onboard = {onboard_dir / name: people for name, people in _onboard_truth(onboard_dir).items()}
    with Gallery.open(Settings(home=real_home)) as gallery:
        fr_hits, fr_total, fr_lines = _rank1(gallery, engine, fr)
        on_hits, on_total, on_lines = _rank1(gallery, engine, onboard)
    print("\n" + "\n".join(fr_lines + on_lines))
    print(f"rank-1: fr_examples/test {fr_hits}/{fr_total}, iss_onboard {on_hits}/{on_total}")
    assert fr_hits == fr_total
    assert on_hits >= on_total - 1


def test_index_and_exact_agree_on_real_and_synthetic_embeddings(real_home, tmp_path, engine, shared_data):
    """~700 real gallery embeddings (glint24 crops, portraits) + 3,000 SYNTHETIC, one index build."""
    home = tmp_path / "ws"
    import shutil

    shutil.copytree(real_home, home, symlinks=True)
    glint = shared_data / "faces" / "glint24_aligned"
    probes = []
    with Gallery.open(Settings(home=home, exact_search_below=0)) as gallery:
        images = []
        for person in sorted(glint.iterdir()):
            crops = sorted(person.glob("*.png"))
            for i, crop in enumerate(crops):
                face = engine.embed_crop(crop)
                if i % 3 == 0:
                    probes.append((person.name, face))  # a third held out as probes
                else:
                    images.append(EnrolledImage(SubjectRecord(person.name), str(crop), f"glint-{person.name}-{i}", 0, 112, 112, 1, face))
        gallery.add_images(images, audit_details={"test": "glint"})
    synthetic, _ = add_synthetic(home, engine.pack_id, identities=1500, per_identity=2, seed=21)
    with Gallery.open(Settings(home=home, exact_search_below=0)) as gallery:
        gallery.rebuild()
        faces = [f for _, f in probes] + [probe_face(p, engine.pack_id) for p in synthetic[:100]]
        by_index = search_many(gallery, faces)
        exact = search_many(gallery, faces, exact=True)
        total = gallery.stats()["faces"]
    assert total > 3500
    assert {r.method for r in by_index} == {"index"}
    for a, b in zip(by_index, exact):
        assert a.subject_ids == b.subject_ids
        assert np.allclose([c.score for c in a], [c.score for c in b], atol=1e-6)
    rank1 = np.mean([r[0].subject_id == name for r, (name, _) in zip(exact, probes)])
    print(f"\nglint24 held-out crops, rank-1 in a gallery of {total} faces: {rank1:.3f}")
    assert rank1 > 0.9
