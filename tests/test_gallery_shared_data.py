"""The gallery on real faces from ../shared/data (skipped with the reason when it is absent).

Gallery: the 221 ISS astronaut portraits (one sub-folder per astronaut, copied here) plus
``fr_examples/train``. Probes: ``fr_examples/test`` and the faces of the three ``iss_onboard``
photos. Rank-1 is printed (run with ``-s`` to see it) and held above a floor.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from workbench.config import Settings
from workbench.gallery.search import search_many
from workbench.gallery.store import EnrolledImage, Gallery, SubjectRecord

from test_gallery_support import (
    ANN_MISS_TARGET_PER_1000,
    SEARCH_K_PER_FACE,
    add_synthetic,
    ann_added_misses,
    enrol_folder,
    index_shape,
    new_home,
    probe_face,
)

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
    # Copies, not symbolic links: enrolment does not follow links unless asked.
    for portrait in sorted((faces / "iss_portraits").glob("*.jpg")):
        (custody / portrait.stem).mkdir()
        shutil.copyfile(portrait, custody / portrait.stem / portrait.name)
    for person in sorted((faces / "fr_examples" / "train").iterdir()):
        (custody / person.name).mkdir()
        for image in sorted(person.iterdir()):
            shutil.copyfile(image, custody / person.name / image.name)
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


def test_every_enrolled_portrait_holds_the_face_it_gives_analysed_alone(real_home, engine, shared_data):
    """Enrolment reads ahead and embeds 16 images per batch; each portrait still holds what
    analysing it on its own gives (every 7th portrait, 32 of 221, to keep the test short)."""
    portraits = sorted((shared_data / "faces" / "iss_portraits").glob("*.jpg"))[::7]
    with Gallery.open(Settings(home=real_home)) as gallery:
        subjects, _, _, embeddings = gallery.subject_faces([p.stem for p in portraits])
    assert sorted(subjects) == sorted(p.stem for p in portraits)  # one face each
    stored = dict(zip(subjects, embeddings))
    cosines = [float(stored[p.stem] @ engine.analyse(p)[0].embedding) for p in portraits]
    assert min(cosines) > 0.99999, dict(zip((p.stem for p in portraits), cosines))


@pytest.fixture(scope="module")
def indexed_home(real_home, tmp_path_factory, engine, shared_data):
    """The real gallery + two thirds of the glint24 crops + 3,000 SYNTHETIC faces, indexed.

    Returns (home, probe faces, their mates, exact candidate lists): the held-out third of the
    glint24 crops (real mated probes) and 1,000 SYNTHETIC mated probes.
    """
    home = tmp_path_factory.mktemp("indexed") / "ws"
    shutil.copytree(real_home, home, symlinks=True)
    glint = shared_data / "faces" / "glint24_aligned"
    probes = []
    with Gallery.open(Settings(home=home, exact_search_below=0)) as gallery:
        images = []
        for person in sorted(p for p in glint.iterdir() if p.is_dir()):
            crops = sorted(person.glob("*.png"))
            for i, crop in enumerate(crops):
                face = engine.embed_crop(crop)
                if i % 3 == 0:
                    probes.append((person.name, face))  # a third held out as probes
                else:
                    images.append(EnrolledImage(SubjectRecord(person.name), str(crop), f"glint-{person.name}-{i}", 0, 112, 112, 1, face))
        gallery.add_images(images, audit_details={"test": "glint"})
    synthetic, subjects = add_synthetic(home, engine.pack_id, identities=1500, per_identity=2, seed=21)
    faces = [f for _, f in probes] + [probe_face(p, engine.pack_id) for p in synthetic[:1000]]
    mates = [name for name, _ in probes] + subjects[:1000]
    with Gallery.open(Settings(home=home, exact_search_below=0)) as gallery:
        gallery.rebuild()
        exact = search_many(gallery, faces, exact=True)
    return home, faces, mates, exact, len(probes)


def _by_index(home, faces, search_k: int):
    with Gallery.open(Settings(home=home, exact_search_below=0, index_search_k=search_k)) as gallery:
        found = search_many(gallery, faces)
    assert {r.method for r in found} == {"index"}
    return found


def test_index_meets_the_miss_target_on_real_and_synthetic_mates(indexed_home):
    """About 700 real gallery embeddings (glint24 crops, portraits) + 3,000 SYNTHETIC, one build;
    search_k scaled to the gallery (not the 4M default, which would visit every face)."""
    home, faces, mates, exact, n_real = indexed_home
    count, n_trees = index_shape(home)
    assert count > 3500
    search_k = SEARCH_K_PER_FACE * count
    assert search_k < n_trees * count
    by_index = _by_index(home, faces, search_k)
    lost_real, listed_real = ann_added_misses(by_index[:n_real], exact[:n_real], mates[:n_real])
    lost_syn, listed_syn = ann_added_misses(by_index[n_real:], exact[n_real:], mates[n_real:])
    rank1 = np.mean([r[0].subject_id == m for r, m in zip(exact[:n_real], mates[:n_real])])
    print(f"\n{count} faces, search_k {search_k}: mates lost by the index: real {lost_real}/{listed_real}, "
          f"synthetic {lost_syn}/{listed_syn}; glint24 held-out crops, exact rank-1 {rank1:.3f}")
    assert lost_real + lost_syn <= ANN_MISS_TARGET_PER_1000 * (listed_real + listed_syn) / 1000
    for a, b in zip(by_index, exact):
        exact_scores = {c.subject_id: c.score for c in b}
        assert all(c.score == pytest.approx(exact_scores[c.subject_id], abs=1e-6) for c in a if c.subject_id in exact_scores)
    assert rank1 > 0.9


def test_a_tiny_search_k_loses_mates_and_the_check_sees_it(indexed_home):
    """The counter-case in the same build: search_k = the 60 faces a search asks for loses mates.

    Asserted on the SYNTHETIC mates only. The real glint24 mates are printed, not asserted: the
    synthetic model's shared direction is not the real embeddings' (cosine -0.13 between the
    means; a real face scores -0.02 +- 0.09 against synthetic ones, 0.11 +- 0.09 against real
    strangers), so Annoy's first splits put the ~700 real faces apart and a real probe is in
    effect searched among them only, where even search_k 60 kept every mate when measured.
    """
    home, faces, mates, exact, n_real = indexed_home
    by_index = _by_index(home, faces, 60)
    lost_real, listed_real = ann_added_misses(by_index[:n_real], exact[:n_real], mates[:n_real])
    lost_syn, listed_syn = ann_added_misses(by_index[n_real:], exact[n_real:], mates[n_real:])
    print(f"\nsearch_k 60: mates lost by the index: synthetic {lost_syn}/{listed_syn}, real {lost_real}/{listed_real} (not asserted)")
    assert 1000 * lost_syn / listed_syn > 100 * ANN_MISS_TARGET_PER_1000
