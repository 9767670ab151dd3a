"""Search: right subject on top for degraded probes, fusion, modes, the index's misses against exact search, exact top-k."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config import Settings
from workbench.errors import GalleryError, WorkbenchError
from workbench.gallery.index import exact_topk
from workbench.gallery.search import FACES_PER_SUBJECT_GUESS, index_search_k, search, search_many, search_probes
from workbench.gallery.store import Gallery
from workbench.images import load_image
from workbench.types import CandidateList, Probe, SearchMode

from test_gallery_support import (  # noqa: F401  (fixtures)
    ANN_MISS_TARGET_PER_1000,
    SAMPLE_SUBJECTS,
    SEARCH_K_PER_FACE,
    T1_SUBJECTS,
    add_synthetic,
    ann_added_misses,
    annoy_coverage,
    copy_home,
    degrade,
    index_shape,
    new_home,
    probe_face,
    sample_folder,
    sample_gallery,
    sample_home,
)

DEGRADATIONS = {
    "half size, JPEG 30": dict(scale=0.5, jpeg=30),
    "third size, blurred": dict(scale=0.34, blur=1.0),
    "dark, grey, JPEG 50": dict(gain=0.45, grey=True, jpeg=50),
}


@pytest.fixture(scope="module")
def gallery(sample_home):
    """The sample gallery, read-only for this module."""
    with Gallery.open(Settings(home=sample_home, user="test-user")) as opened:
        yield opened


@pytest.mark.parametrize("how", DEGRADATIONS, ids=list(DEGRADATIONS))
@pytest.mark.parametrize("subject, image", [("HANKS", "tom_hanks_path"), ("COLLINS", "astronaut_path")])
def test_degraded_copy_finds_its_subject_on_top(gallery, engine, request, subject, image, how):
    rgb = degrade(load_image(request.getfixturevalue(image)), **DEGRADATIONS[how])
    probe = engine.prominent_face(rgb)
    found = search(gallery, probe)
    assert found[0].subject_id == subject and found[0].rank == 1
    assert found[0].score > 0.5 > found[1].score and found[0].above_threshold is True
    assert len(found) == len(SAMPLE_SUBJECTS)  # top 20 > 8 subjects: everyone, ranked


#: the t1 crops are small (faces about 45 px between the eyes), so they lose less resolution.
CROP_DEGRADATIONS = {
    "half size, JPEG 30": dict(scale=0.5, jpeg=30),
    "blurred, JPEG 40": dict(blur=1.5, jpeg=40),
    "dark, grey, JPEG 50": dict(gain=0.45, grey=True, jpeg=50),
}


@pytest.mark.parametrize("how", CROP_DEGRADATIONS, ids=list(CROP_DEGRADATIONS))
def test_degraded_custody_crops_find_their_subjects(gallery, engine, sample_folder, how):
    probes = [engine.prominent_face(degrade(load_image(sample_folder / s / "custody.png"), **CROP_DEGRADATIONS[how])) for s in T1_SUBJECTS]
    results = search_many(gallery, probes, top=3)
    assert [r[0].subject_id for r in results] == T1_SUBJECTS


def test_faces_of_the_degraded_group_photo_find_their_subjects(gallery, engine, t1_rgb):
    """The whole photo at half size and JPEG 30 against crops re-detected at full size: harder.

    The detector places the landmarks of the two leftmost, turned faces differently in the crop
    and in the photo (same-image cosine 0.68 and 0.45), so rank 1 for all six is not a given.
    """
    faces = sorted(engine.analyse(degrade(t1_rgb, scale=0.5, jpeg=30)), key=lambda f: f.bbox_xyxy[0])
    assert len(faces) == 6
    results = search_many(gallery, faces, top=3)
    assert sum(r[0].subject_id == s for r, s in zip(results, T1_SUBJECTS)) >= 5
    assert all(s in r.subject_ids for r, s in zip(results, T1_SUBJECTS))


def test_several_faces_of_one_person_fuse_into_one_list(gallery, engine, tom_hanks_path, astronaut_path):
    rgb = load_image(tom_hanks_path)
    faces = [engine.prominent_face(degrade(rgb, **d)) for d in DEGRADATIONS.values()]
    fused = search(gallery, faces, top=5)
    singles = [search(gallery, f, top=5) for f in faces]
    assert fused.probe_faces == 3 and fused[0].subject_id == "HANKS"
    top = fused[0]
    assert len(top.per_probe_scores) == 3 and top.score == max(top.per_probe_scores)
    for single, per_probe in zip(singles, top.per_probe_scores):
        assert single[0].subject_id == "HANKS" and single[0].score == pytest.approx(per_probe, abs=1e-6)
    # A stranger's face among the probes does not lower the fused score (max, not mean).
    mixed = search(gallery, faces + [engine.prominent_face(astronaut_path)], top=2)
    assert {c.subject_id for c in mixed} == {"HANKS", "COLLINS"}


def test_candidate_list_as_frame_and_dict(gallery, engine, tom_hanks_path):
    found = search(gallery, engine.prominent_face(tom_hanks_path), top=4)
    assert isinstance(found, CandidateList) and len(found) == 4 and found.method == "exact"
    frame = found.to_frame()
    assert list(frame.columns)[:7] == ["rank", "subject_id", "score", "image_id", "face_id", "above_threshold", "per_probe_scores"]
    assert "probe_id" in frame.columns
    assert frame["rank"].tolist() == [1, 2, 3, 4] and frame["score"].is_monotonic_decreasing
    assert frame.loc[0, "subject_id"] == "HANKS"
    row = found.as_dict()["candidates"][0]
    assert list(row)[:5] == ["rank", "subject_id", "score", "image_id", "above_threshold"]


@pytest.mark.parametrize(
    "mode, threshold, expected",
    [
        ("investigation", 0.99, 8),  # fixed length whatever the scores
        ("identification", 0.5, 1),  # only Hanks clears it
        ("identification", 0.9999, 0),  # an empty list is a valid answer
        (SearchMode.IDENTIFICATION, -1.0, 8),
    ],
)
def test_modes_cut_the_list(gallery, engine, tom_hanks_path, mode, threshold, expected):
    probe = engine.prominent_face(degrade(load_image(tom_hanks_path), scale=0.5))
    found = search(gallery, probe, mode=mode, threshold=threshold)
    assert len(found) == expected and found.threshold == threshold
    assert all(c.above_threshold == (c.score >= threshold) for c in found)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"top": 0}, "top must be at least 1"),
        ({"mode": "verify"}, "search mode must be one of"),
        ({"threshold": 1.5}, r"threshold must be a cosine in \[-1, 1\]"),
    ],
)
def test_bad_search_arguments(gallery, engine, tom_hanks_path, kwargs, message):
    with pytest.raises(WorkbenchError, match=message):
        search(gallery, engine.prominent_face(tom_hanks_path), **kwargs)


def test_default_threshold_is_the_packs(gallery, engine, tom_hanks_path):
    found = search(gallery, engine.prominent_face(tom_hanks_path))
    assert found.threshold == engine.pack.default_threshold


def test_identification_without_any_threshold_is_an_error(tmp_path, session_home):
    home = new_home(tmp_path / "ws", session_home)
    from workbench.types import PackId

    pack = PackId("no-threshold-pack", "cd" * 32)
    probes, _ = add_synthetic(home, pack, identities=5)
    with Gallery.open(Settings(home=home)) as g:
        assert search(g, probe_face(probes[0], pack)).threshold is None
        with pytest.raises(GalleryError, match="identification mode needs an operating threshold"):
            search(g, probe_face(probes[0], pack), mode="identification")


def test_empty_gallery_is_an_error(tmp_path, session_home, engine, tom_hanks_path):
    with Gallery.open(Settings(home=new_home(tmp_path / "ws", session_home))) as empty:
        with pytest.raises(GalleryError, match="is empty: enrol custody images first"):
            search(empty, engine.prominent_face(tom_hanks_path))


def test_probes_come_back_best_quality_first(gallery, engine, t1_rgb, tom_hanks_path):
    sharp = engine.prominent_face(tom_hanks_path)
    blurred = engine.prominent_face(degrade(load_image(tom_hanks_path), scale=0.5, blur=1.5))
    probes = [Probe("blurred", "x", (blurred,)), Probe("sharp", "y", (sharp,))]
    results = search_probes(gallery, probes, top=2)
    assert [p.probe_id for p, _ in results] == ["sharp", "blurred"]
    assert all(found[0].subject_id == "HANKS" for _, found in results)


def test_a_subject_with_several_images_scores_with_their_best(sample_gallery, engine, tom_hanks_path):
    rgb = load_image(tom_hanks_path)
    from test_gallery_support import enrol_folder, save_image

    folder = sample_gallery.settings.home.parent / "more"
    save_image(folder / "HANKS" / "second.jpg", degrade(rgb, scale=0.6), quality=70)
    enrol_folder(sample_gallery.settings.home, engine, folder)
    assert len(sample_gallery.images_of("HANKS")) == 2
    found = search(sample_gallery, engine.prominent_face(tom_hanks_path))
    assert found.subject_ids.count("HANKS") == 1
    assert found[0].score > 0.999 and found[0].image_id == sample_gallery.images_of("HANKS")[0]["image_id"]


# ---------------------------------------------------------------------------------------------
# The index against exact search: within the miss target where search_k is large enough, and
# measurably not where it is tiny (so the comparison can fail).
#
# The gallery default (search_k 4M) exceeds n_trees x faces here: Annoy would visit every face and
# agree with exact search by construction. These tests set search_k from the gallery size instead
# and measure how much of the gallery Annoy skips.


@pytest.fixture(scope="module")
def mixed_home(tmp_path_factory, sample_home, engine):
    """Sample gallery (real embeddings) + 3,000 SYNTHETIC faces (1,500 identities x 2), indexed."""
    home = copy_home(sample_home, tmp_path_factory.mktemp("mixed") / "ws")
    probes, subjects = add_synthetic(home, engine.pack_id, identities=1500, per_identity=2, seed=11)
    with Gallery.open(Settings(home=home)) as g:
        g.rebuild()
    return home, probes, subjects


#: real probes in mated_probes: Hanks, and t1's six faces from a degraded copy of the photo.
REAL_PROBES = 7


@pytest.fixture(scope="module")
def mated_probes(mixed_home, engine, t1_rgb, tom_hanks_path):
    """(probe faces, their mates, exact candidate lists): 7 real degraded faces and 1,500 SYNTHETIC mated probes."""
    home, probes, subjects = mixed_home
    real = [engine.prominent_face(degrade(load_image(tom_hanks_path), scale=0.5))]
    real += sorted(engine.analyse(degrade(t1_rgb, scale=0.5, jpeg=40)), key=lambda f: f.bbox_xyxy[0])
    assert len(real) == REAL_PROBES
    faces = real + [probe_face(p, engine.pack_id) for p in probes]
    mates = ["HANKS", *T1_SUBJECTS, *subjects]
    with Gallery.open(Settings(home=home)) as g:
        exact = search_many(g, faces, exact=True)
    assert {r.method for r in exact} == {"exact"}
    return faces, mates, exact


def _index_search(home, faces, search_k: int | None = None):
    """Search through the index; ``search_k`` None leaves ``index_search_k`` at its default (scaled with the gallery)."""
    extra = {} if search_k is None else {"index_search_k": search_k}
    with Gallery.open(Settings(home=home, exact_search_below=1000, **extra)) as g:
        assert g.uses_index()
        found = search_many(g, faces)
    assert {r.method for r in found} == {"index"}
    return found


def test_index_meets_the_miss_target_where_search_k_scales_with_the_gallery(mixed_home, mated_probes):
    home, probes, _ = mixed_home
    faces, mates, exact = mated_probes
    count, n_trees = index_shape(home)
    search_k = index_search_k(Settings(home=home), count)  # the default: it grows with the gallery
    assert search_k == SEARCH_K_PER_FACE * count
    assert search_k < n_trees * count  # below Annoy's exhaustive search...
    coverage = annoy_coverage(home, probes[:300], search_k)
    assert coverage.min() < 1.0  # ...and Annoy does skip faces, so agreement is not by construction
    by_index = _index_search(home, faces)
    lost, listed = ann_added_misses(by_index, exact, mates)
    same_lists = sum(a.subject_ids == b.subject_ids for a, b in zip(by_index, exact))
    print(f"\nsearch_k {search_k} ({SEARCH_K_PER_FACE} per face, {count} faces, {n_trees} trees): Annoy looks at "
          f"{coverage.mean():.1%} of the gallery (least {coverage.min():.1%}); mates lost {lost}/{listed}; "
          f"identical lists {same_lists}/{len(faces)}")
    assert listed >= 0.95 * len(faces)
    assert lost <= ANN_MISS_TARGET_PER_1000 * listed / 1000
    assert same_lists >= 0.99 * len(faces)
    for a, b in zip(by_index, exact):
        # A subject's score is computed exactly over all their faces, whoever proposed them.
        exact_scores = {c.subject_id: c.score for c in b}
        assert all(c.score == pytest.approx(exact_scores[c.subject_id], abs=1e-6) for c in a if c.subject_id in exact_scores)
    assert exact[0][0].subject_id == "HANKS"
    rank1 = np.mean([r[0].subject_id == m for r, m in zip(exact[REAL_PROBES:], mates[REAL_PROBES:])])
    assert rank1 > 0.9  # synthetic mates score 0.6 +- 0.13, as SFace's do: not all come first


@pytest.mark.parametrize("per_face, lost_per_1000_above", [(0, 200.0), (1, ANN_MISS_TARGET_PER_1000)], ids=["faces-asked", "1-per-face"])
def test_too_small_a_search_k_loses_mates_and_the_check_sees_it(mixed_home, mated_probes, per_face, lost_per_1000_above):
    """The counter-case: the same comparison fails when the index looks at too little of the gallery.

    per_face 0: search_k = the faces a search asks for (3 x top = 60; Annoy looks at about 3% of
    this gallery); per_face 1: one node per face (about half of it). Measured: about 500 and 30
    mates lost per 1,000, both far above the target.
    """
    home, probes, _ = mixed_home
    faces, mates, exact = mated_probes
    count, _ = index_shape(home)
    search_k = max(per_face * count, FACES_PER_SUBJECT_GUESS * Settings(home=home).top)
    by_index = _index_search(home, faces, search_k)
    lost, listed = ann_added_misses(by_index, exact, mates)
    coverage = annoy_coverage(home, probes[:300], search_k).mean()
    print(f"\nsearch_k {search_k}: Annoy looks at {coverage:.1%} of the gallery; "
          f"mates lost {lost}/{listed} ({1000 * lost / listed:.0f} per 1,000)")
    assert coverage < 0.75
    assert 1000 * lost / listed > lost_per_1000_above


def test_removed_records_vanish_from_index_search_before_any_rebuild(mixed_home, tmp_path, engine):
    source, probes, subjects = mixed_home
    home = copy_home(source, tmp_path / "ws")
    with Gallery.open(Settings(home=home, exact_search_below=0)) as g:
        probe = probe_face(probes[5], engine.pack_id)
        assert search(g, probe)[0].subject_id == subjects[5]
        g.remove_subject(subjects[5], vacuum=False)
        found = search(g, probe)
        assert found.method == "index" and subjects[5] not in found.subject_ids and len(found) == 20
        assert g.stats()["removed_since_build"] == 2  # both faces of that identity


@pytest.mark.parametrize("rows_n, n_probes, chunk", [(1000, 3, 128), (30_000, 40, 4096), (5000, 1, 65536)])
def test_exact_topk_matches_a_full_sort_with_hidden_rows_and_chunks(rows_n, n_probes, chunk):
    rng = np.random.default_rng(rows_n)
    matrix = rng.standard_normal((rows_n, 16)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    probes = matrix[rng.choice(rows_n, n_probes, replace=False)] + 0.1
    hidden = np.zeros(rows_n, bool)
    hidden[[3, 10, rows_n - 1]] = True
    rows, scores = exact_topk(matrix, probes, 25, hidden=hidden, chunk_rows=chunk)
    full = probes @ matrix.T
    full[:, hidden] = -np.inf
    expected = np.argsort(-full, axis=1, kind="stable")[:, :25]
    assert np.array_equal(rows, expected)
    assert np.allclose(scores, np.take_along_axis(full, expected, axis=1))
    rows, _ = exact_topk(matrix[:5], probes, 25, hidden=hidden[:5])
    assert rows.shape == (n_probes, 4)  # only 4 visible rows


@pytest.mark.parametrize("n_probes", [1, 7, 64])
def test_exact_topk_over_parts_merged_equals_the_whole_with_ties_to_the_lower_row(n_probes):
    """What sharded search relies on: parts searched apart and merged by (score, row) give the
    whole matrix's answer, bit for bit, whatever the part borders, and tied rows (duplicates
    here) come lowest row first."""
    rng = np.random.default_rng(n_probes)
    matrix = rng.standard_normal((9000, 128)).astype(np.float32)
    matrix[4500:6000] = matrix[:1500]  # every one of these rows ties with an earlier one
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    probes = matrix[rng.choice(1500, n_probes, replace=False)] + 0.05 * rng.standard_normal((n_probes, 128)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    rows, scores = exact_topk(matrix, probes, 40)
    assert np.all(np.diff(scores, axis=1) <= 0)
    tied = scores[:, :-1] == scores[:, 1:]
    assert tied.any() and np.all(rows[:, :-1][tied] < rows[:, 1:][tied])
    for borders in ([0, 4501, 9000], [0, 17, 3001, 5999, 6000, 9000]):
        part_rows, part_scores = [], []
        for start, stop in zip(borders[:-1], borders[1:]):
            r, s = exact_topk(matrix[start:stop], probes, 40)
            part_rows.append(r + start)
            part_scores.append(s)
        all_rows, all_scores = np.concatenate(part_rows, axis=1), np.concatenate(part_scores, axis=1)
        order = np.lexsort((all_rows, -all_scores), axis=1)[:, :40]
        assert np.array_equal(np.take_along_axis(all_rows, order, axis=1), rows)
        assert np.array_equal(np.take_along_axis(all_scores, order, axis=1), scores)
