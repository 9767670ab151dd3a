"""Benchmark the gallery index (Annoy) against exact numpy search, on SYNTHETIC embeddings.

    .venv/bin/python bench/bench_index.py --sizes 10000,100000,1000000 \\
        [--n-trees 32,64] [--search-k 10000,50000,200000] [--probes 2000] [--out results.json]
    .venv/bin/python bench/bench_index.py --calibrate     # refit the synthetic model on ../shared/data
    .venv/bin/python bench/bench_index.py --quick         # 10k and 50k subjects, search_k 0.5/2/8 per face
    .venv/bin/python bench/bench_index.py --sizes 1000000 --n-trees 16 --search-k-per-face 0.25,1,4,8

The search at 1M and 10M faces per shard, with the curve search_k -> misses -> ms side by side
with exact and sharded search, is in bench_sharded.py (same synthetic model, same index builds).

What it measures, per gallery size (number of subjects):

* Annoy: build time and file size per ``n_trees``; per ``search_k``, query latency p50/p99 for a
  top-20 candidate list, and the misses the index adds: mated probes whose mate is in the exact
  top-20 subjects but not in the index's top-20 (per 1,000 mated probes). Annoy's proposals are
  re-ranked exactly, as :class:`workbench.gallery.store.LiveView` does for every search.
* Exact numpy search on the same data: single-probe latency p50/p99 and batched throughput
  (matrix-matrix, float32), through the same ``LiveView.nearest_faces`` the workbench runs.
* Peak resident memory, MB, each of a process of its own (VmHWM read in that process, see
  :mod:`peak_memory`): of the process that runs one gallery size (generates the data, builds
  the index for each ``n_trees``, searches), started fresh for every size so no size inherits
  another's allocations; and of a fresh process that only loads the largest build
  (memory-mapped) and searches it, which is what a workstation running searches pays.

Data (labelled SYNTHETIC in every output): vectors of the pack's dimension drawn from
:data:`synthetic.SFACE_MODEL`, fitted so mated and non-mated cosines match what
the opencv-zoo SFace pack gives on ../shared/data (mated 0.59 +- 0.13, non-mated 0.11 +- 0.09,
non-mated q99.9 0.395). ``--probes`` identities have 1 to 3 gallery images and one probe each;
every other subject is a one-image distractor. When ../shared/data is present, the real
embeddings are added as well: the 221 ISS portraits (distractors) and the glint24 crops (24 people,
two thirds in the gallery, one third as real mated probes, reported apart).

Figures, never assertions. The machine is shared: the load average is printed with the results.

Results (2 cores, 24 GiB, no GPU; SYNTHETIC SFace-like 128-d vectors + 696 real SFace embeddings;
2,000 synthetic mated probes + 238 real ones; misses = ANN-added misses per 1,000 mated probes,
latency per top-20 list). Commands::

    bench_index.py --sizes 10000,100000 --n-trees 16,32,64 --search-k 50000,200000,800000,3200000
    bench_index.py --sizes 1000000 --n-trees 16,32 --search-k 200000,1000000,4000000 --memory-trees 16
    bench_index.py --sizes 100000,1000000 --n-trees 16 --search-k 800000,4000000 --probes 300 --no-real  (quiet machine)

Index (n_trees 16; load average 3 to 4 while these ran: other engineers' jobs)::

    faces   search_k  build   file     p50 ms  p99 ms  misses/1k
    12.6k   50k       0.7 s   16 MB      3.0     7.0     0.5
    12.6k   200k      0.7 s   16 MB     16.4    87.4     0      (32 trees: 9.4 ms, 0)
    103k    200k      5.7 s   127 MB    15.9    24.7     4.5    (32 trees: 8.5, 64 trees: 8.0)
    103k    800k      5.7 s   127 MB    46.2    74.6     0      (32 trees: 0.5)
    1.00M   200k      59 s    1.24 GB   25.6    38.4    73.0    (32 trees: 63.0)
    1.00M   1M        59 s    1.24 GB   97.0   121.8     8.0    (32 trees: 10.5)
    1.00M   4M        59 s    1.24 GB  287.6   340.1     0      (32 trees: 0.5; 79 s, 1.43 GB)

Exact numpy search (same data; single probe p50 / batch of 256, ms per probe)::

    faces   loaded machine (load 3-4)   quiet machine (load ~1)
    12.6k   0.28 / 0.25                 -
    103k    8.7  / 1.27                 2.3  / 0.43
    1.00M   140  / 6.1                  20.8 / 3.6   (index at 4M, same quiet run: 282 ms)

Real probes (glint24 crops against their 20 gallery crops) lost no mate at any setting, which
says little about real galleries: the synthetic model's shared direction is not the real
embeddings' (cosine -0.13 between the means; a real face scores -0.02 +- 0.09 against synthetic
ones, 0.11 +- 0.09 against real strangers), so the synthetic faces never crowd the real ones and
Annoy's splits keep the ~700 real faces apart; tests/test_gallery_shared_data.py saw no real mate
lost even at search_k 60, where synthetic probes lost about half.
Peak memory at 1M: a fresh process that maps the 16-tree build and runs 200 index and 200 exact
searches peaks at 1.34 GB resident (the 512 MB embedding matrix and the 0.7 GB Annoy file);
the process that generated, built and searched the 1M gallery peaked at 3.0 GB (measured
before each size ran in its own process; re-run to refresh).

Reading: Annoy's misses depend on search_k, hardly on n_trees; meeting the target needs search_k
growing with the gallery (about 8 per face at 100k, 4 per face at 1M), and then a query costs
13x (1M) to 50x (10k) a single exact search, and 80x a batched one. Tree splits separate a face
from a mate at cosine 0.6 (53 degrees) too often. Hence the defaults in :mod:`workbench.config`:
exact search below 10M faces, 16 trees, search_k 4M when the index is used. Since then
(bench_sharded.py, same data model, 1M faces per shard): search_k left at its default scales
as 8 per indexed face (search.SEARCH_K_PER_FACE); no (n_trees, search_k) beats exact search at
<= 1 ANN-added miss per 1,000 mated probes, at 1M nor at 10M as 10 shards of 1M: the points
faster than a single exact search (<= 2 per face) add 18 to 116 misses per 1,000. Multi-threaded
OpenBLAS suffers most from a busy machine (single exact search 21 ms quiet, 140 ms at load 3;
``OPENBLAS_NUM_THREADS=1`` gave 36 ms under the same load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from workbench.gallery.index import LiveView, load_build, new_build

from peak_memory import peak_rss_mb, peak_source, run_fresh
from synthetic import SFACE_MODEL, calibrate, model_stats, score_stats

TOP = 20
#: faces asked per probe, as search.py asks first (top x 3).
FACES_ASKED = 3 * TOP
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# ---------------------------------------------------------------------------------------------
# Data


def real_embeddings(cache: Path | None) -> dict | None:
    """Real SFace embeddings from ../shared/data: glint24 crops with labels, ISS portraits. None if absent."""
    if cache is not None and cache.exists():
        data = np.load(cache)
        return {k: data[k] for k in data.files}
    glint = SHARED / "faces" / "glint24_aligned"
    if not glint.is_dir():
        return None
    from workbench.config import Settings
    from workbench.engine import FaceEngine

    home = Path(tempfile.mkdtemp(prefix="bench-index-models-"))
    engine = FaceEngine.from_settings(Settings(home=home))
    glint_x, glint_y = [], []
    for label, person in enumerate(sorted(p for p in glint.iterdir() if p.is_dir())):
        for crop in sorted(person.glob("*.png")):
            glint_x.append(engine.embed_crop(crop).embedding)
            glint_y.append(label)
    portraits = [engine.prominent_face(p) for p in sorted((SHARED / "faces" / "iss_portraits").glob("*.jpg"))]
    data = {
        "glint_x": np.array(glint_x, np.float32), "glint_y": np.array(glint_y),
        "portraits": np.array([f.embedding for f in portraits if f is not None], np.float32),
    }
    shutil.rmtree(home, ignore_errors=True)
    if cache is not None:
        np.savez(cache, **data)
    return data


def make_gallery(subjects: int, mated: int, real: dict | None, seed: int) -> dict:
    """SYNTHETIC gallery of ``subjects`` subjects (+ real ones) and mated probes.

    Returns a dict: matrix (N, D) float32, owner (N,) int subject of each row, probes (P, D),
    probe_owner (P,), probe_kind (P,) "synthetic" | "real".
    """
    rng = np.random.default_rng(seed)
    model = SFACE_MODEL
    centres = model.identities(subjects, rng)
    copies = np.ones(subjects, int)
    copies[:mated] = rng.integers(1, 4, mated)  # mated identities: 1 to 3 custody images
    rows, owner = [], []
    for copy in range(copies.max()):
        who = np.flatnonzero(copies > copy)
        rows.append(model.samples(centres[who], rng))
        owner.append(who)
    matrix = np.concatenate(rows)
    owner = np.concatenate(owner)
    probes = model.samples(centres[:mated], rng)
    probe_owner = np.arange(mated)
    kinds = ["synthetic"] * mated
    if real is not None:
        base = subjects
        held = np.arange(len(real["glint_y"])) % 3 == 0
        matrix = np.concatenate([matrix, real["glint_x"][~held], real["portraits"]])
        owner = np.concatenate([owner, base + real["glint_y"][~held], base + 100 + np.arange(len(real["portraits"]))])
        probes = np.concatenate([probes, real["glint_x"][held]])
        probe_owner = np.concatenate([probe_owner, base + real["glint_y"][held]])
        kinds += ["real"] * int(held.sum())
    # Rows in a random order, as enrolment order carries no meaning.
    order = rng.permutation(len(matrix))
    return {"matrix": np.ascontiguousarray(matrix[order]), "owner": owner[order], "probes": probes.astype(np.float32),
            "probe_owner": probe_owner, "probe_kind": np.array(kinds)}


def top_subjects(face_rows: np.ndarray, owner: np.ndarray, top: int = TOP) -> list[set]:
    """First ``top`` distinct subjects of each best-first row list (-1 = padding)."""
    result = []
    for rows in face_rows:
        seen: dict[int, None] = {}
        for r in rows:
            if r < 0:
                break
            seen.setdefault(int(owner[r]), None)
            if len(seen) == top:
                break
        result.append(set(seen))
    return result


# ---------------------------------------------------------------------------------------------
# Measurements


def exact_view(matrix: np.ndarray) -> LiveView:
    """A live view with every row pending: exact search over the matrix, face id = row number."""
    ids = np.arange(len(matrix), dtype=np.int64)
    return LiveView(pack_id=None, build=None, hidden=None, pending_ids=ids, pending=matrix, count=len(matrix))


def index_view(build) -> LiveView:
    return LiveView(pack_id=None, build=build, hidden=np.zeros(build.count, bool), pending_ids=np.zeros(0, np.int64),
                    pending=np.zeros((0, build.embeddings.shape[1]), np.float32), count=build.count)


def latencies_ms(view: LiveView, probes: np.ndarray, *, use_index: bool, search_k: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Per-probe latency (ms) and the returned face rows (P, FACES_ASKED)."""
    times, rows = [], []
    for probe in probes:
        start = time.perf_counter()
        ids, _ = view.nearest_faces(probe[None], FACES_ASKED, use_index=use_index, search_k=search_k)
        times.append((time.perf_counter() - start) * 1000)
        rows.append(ids[0])
    return np.array(times), np.stack(rows)


def exact_batched(view: LiveView, probes: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """ms per probe when searching in batches, and the face rows of all probes."""
    start = time.perf_counter()
    rows = [view.nearest_faces(probes[i : i + batch], FACES_ASKED, use_index=False, search_k=-1)[0] for i in range(0, len(probes), batch)]
    return (time.perf_counter() - start) * 1000 / len(probes), np.concatenate(rows)


def build_index(matrix: np.ndarray, folder: Path, n_trees: int) -> tuple[float, int]:
    """Build with the workbench's own BuildWriter; (seconds, total bytes of the build)."""
    start = time.perf_counter()
    with new_build(folder) as writer:
        embeddings, face_ids = writer.allocate(*matrix.shape)
        embeddings[:] = matrix
        face_ids[:] = np.arange(len(matrix))
        writer.build(n_trees=n_trees)
        manifest = writer.commit({"pack_id": "synthetic", "n_trees": n_trees, "search_k": -1, "removed_seq": 0})
    return time.perf_counter() - start, sum(f["bytes"] for f in manifest["files"].values())


def misses_per_1000(exact_sets, index_sets, probe_owner, mask) -> tuple[float, int, int]:
    """ANN-added misses per 1,000 mated probes (mate in exact top-20, not in the index's)."""
    misses = sum(1 for i in np.flatnonzero(mask) if probe_owner[i] in exact_sets[i] and probe_owner[i] not in index_sets[i])
    n = int(mask.sum())
    return 1000.0 * misses / max(n, 1), misses, n


def run_size(subjects: int, args, real: dict | None, workdir: Path) -> dict:
    data = make_gallery(subjects, args.probes, real, args.seed)
    matrix, owner, probes, probe_owner = data["matrix"], data["owner"], data["probes"], data["probe_owner"]
    synthetic = data["probe_kind"] == "synthetic"
    result = {"subjects": subjects, "faces": len(matrix), "dim": matrix.shape[1], "mated_probes": int(synthetic.sum()),
              "real_probes": int((~synthetic).sum()), "load_before": load_average()}
    print(f"\n== {subjects:,} subjects, {len(matrix):,} faces (SYNTHETIC"
          f"{' + real' if real is not None else ''}), {len(probes)} mated probes; load {load_average()}", flush=True)

    view = exact_view(matrix)
    single_n = min(len(probes), args.exact_single)
    times, _ = latencies_ms(view, probes[:single_n], use_index=False)
    result["exact_single_ms"] = {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "n": single_n}
    result["exact_batched_ms_per_probe"] = {}
    exact_rows = None
    for batch in args.batches:
        per_probe, rows = exact_batched(view, probes, batch)
        result["exact_batched_ms_per_probe"][str(batch)] = per_probe
        exact_rows = rows
    exact_sets = top_subjects(exact_rows, owner)
    result["exact_rank1"] = float(np.mean([int(owner[r[0]]) == o for r, o in zip(exact_rows[synthetic], probe_owner[synthetic])]))
    result["exact_mate_in_top20"] = float(np.mean([o in s for s, o, k in zip(exact_sets, probe_owner, synthetic) if k]))
    print(f"exact: single p50 {result['exact_single_ms']['p50']:.2f} ms p99 {result['exact_single_ms']['p99']:.2f} ms; "
          + ", ".join(f"batch {b}: {v:.2f} ms/probe" for b, v in result["exact_batched_ms_per_probe"].items())
          + f"; rank-1 {result['exact_rank1']:.3f}, mate in top-20 {result['exact_mate_in_top20']:.3f}", flush=True)

    result["index"] = []
    for n_trees in args.n_trees:
        folder = workdir / f"index-{subjects}-{n_trees}"
        shutil.rmtree(folder, ignore_errors=True)
        seconds, size = build_index(matrix, folder, n_trees)
        build = load_build(folder)
        iview = index_view(build)
        search_ks = [int(f * len(matrix)) for f in args.search_k_per_face] if args.search_k_per_face else args.search_k
        for search_k in search_ks:
            times, rows = latencies_ms(iview, probes, use_index=True, search_k=search_k)
            index_sets = top_subjects(rows, owner)
            per_1000, misses, n = misses_per_1000(exact_sets, index_sets, probe_owner, synthetic)
            row = {"n_trees": n_trees, "search_k": search_k, "build_s": seconds, "bytes": size,
                   "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                   "misses_per_1000": per_1000, "misses": misses, "mated": n}
            if (~synthetic).any():
                _, real_misses, real_n = misses_per_1000(exact_sets, index_sets, probe_owner, ~synthetic)
                row.update(real_misses=real_misses, real_probes=real_n)
            result["index"].append(row)
            print(f"annoy n_trees {n_trees:>3} search_k {search_k:>8}: build {seconds:7.1f} s, {size / 1e6:8.1f} MB, "
                  f"p50 {row['p50_ms']:7.2f} ms p99 {row['p99_ms']:7.2f} ms, misses {per_1000:5.2f}/1000 ({misses}/{n})"
                  + (f", real {row['real_misses']}/{row['real_probes']}" if "real_misses" in row else ""), flush=True)
        build.close()
        if subjects == max(args.sizes) and n_trees == args.memory_trees:
            result["serve_peak_rss_mb"] = serve_memory(folder, probes[:200], args.memory_search_k)
            print(f"fresh process, load build + 200 index and 200 exact searches: peak RSS {result['serve_peak_rss_mb']:.0f} MB",
                  flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    result["load_after"] = load_average()
    return result


def run_size_fresh(subjects: int, args, real: dict | None, workdir: Path) -> dict:
    """:func:`run_size` in a fresh spawned process; its result with ``size_peak_rss_mb``, that process's own peak (MB)."""
    result, peak = run_fresh(run_size, subjects, args, real, workdir)
    result["size_peak_rss_mb"] = peak
    print(f"process that ran {subjects:,} subjects: peak RSS {peak:.0f} MB ({peak_source()})", flush=True)
    return result


def serve_memory(folder: Path, probes: np.ndarray, search_k: int) -> float:
    """Peak RSS (MB) of a fresh process that loads the build and searches it both ways.

    A subprocess (fresh interpreter) that reads its own VmHWM at the end, so neither the size's
    process that built the index nor this one's data generation counts.
    """
    probe_file = folder.parent / "serve-probes.npy"
    np.save(probe_file, probes)
    out = subprocess.run([sys.executable, __file__, "--_serve", str(folder), str(probe_file), str(search_k)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _serve(folder: str, probe_file: str, search_k: str) -> None:
    build = load_build(Path(folder))
    probes = np.load(probe_file)
    view = index_view(build)
    latencies_ms(view, probes, use_index=True, search_k=int(search_k))
    exact = LiveView(None, build, np.zeros(build.count, bool), np.zeros(0, np.int64), np.zeros((0, probes.shape[1]), np.float32),
                     build.count)
    exact.nearest_faces(probes, FACES_ASKED, use_index=False, search_k=-1)
    print(peak_rss_mb())


# ---------------------------------------------------------------------------------------------


def print_table(results: list[dict], args) -> None:
    print("\nSYNTHETIC embeddings (SFace-calibrated) + real where present. Latency per top-20 list; "
          "misses = ANN-added, per 1,000 mated probes.")
    print(f"{'subjects':>10} {'trees':>5} {'search_k':>9} {'build s':>8} {'MB':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'miss/1k':>7} {'exact p50':>9} {'exact b256':>10} {'p50 vs exact':>12}")
    for r in results:
        batched = r["exact_batched_ms_per_probe"].get(str(max(args.batches)), float("nan"))
        for row in r["index"]:
            ratio = row["p50_ms"] / r["exact_single_ms"]["p50"]
            print(f"{r['subjects']:>10,} {row['n_trees']:>5} {row['search_k']:>9} {row['build_s']:>8.1f} {row['bytes'] / 1e6:>8.1f} "
                  f"{row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {row['misses_per_1000']:>7.2f} {r['exact_single_ms']['p50']:>9.2f} "
                  f"{batched:>10.3f} {ratio:>11.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes (subjects), comma-separated")
    parser.add_argument("--n-trees", default="32,64", help="Annoy n_trees to build, comma-separated")
    parser.add_argument("--search-k", default="10000,50000,100000,200000", help="Annoy search_k values, comma-separated")
    parser.add_argument("--search-k-per-face", default="",
                        help="Annoy search_k as multiples of each gallery's faces, comma-separated (replaces --search-k): "
                             "the sweep scales with the size, as the workbench's default search_k does")
    parser.add_argument("--quick", action="store_true", help="10k and 50k subjects, 16 trees, 500 probes, no real data (< 2 min)")
    parser.add_argument("--probes", type=int, default=2000, help="mated SYNTHETIC probes (identities with gallery images)")
    parser.add_argument("--exact-single", type=int, default=300, help="probes timed one by one for exact search")
    parser.add_argument("--batches", default="64,256", help="batch sizes for exact batched search")
    parser.add_argument("--memory-trees", type=int, default=32, help="n_trees of the build whose serving memory is measured")
    parser.add_argument("--memory-search-k", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-real", action="store_true", help="leave out the real embeddings of ../shared/data")
    parser.add_argument("--real-cache", type=Path, help="cache the real embeddings in this .npz")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-index")
    parser.add_argument("--out", type=Path, help="write all figures as JSON")
    parser.add_argument("--calibrate", action="store_true", help="refit the synthetic model on ../shared/data and exit")
    parser.add_argument("--_serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._serve:
        _serve(*args._serve)
        return 0
    real = None if args.no_real or args.quick else real_embeddings(args.real_cache)
    print(f"```\n{' '.join(['.venv/bin/python', *sys.argv])}\n```")
    if args.calibrate:
        if real is None:
            print(f"no shared data at {SHARED}: nothing to calibrate on")
            return 1
        embeddings = np.concatenate([real["glint_x"], real["portraits"]])
        labels = np.concatenate([real["glint_y"], 1000 + np.arange(len(real["portraits"]))])
        target = score_stats(embeddings, labels)
        fitted = calibrate(target)
        print(json.dumps({"real": target, "current": SFACE_MODEL.as_dict(), "current_stats": model_stats(SFACE_MODEL),
                          "fitted": fitted.as_dict(), "fitted_stats": model_stats(fitted, seed=5)}, indent=2))
        return 0
    if args.quick:
        args.sizes, args.n_trees, args.probes, args.exact_single, args.memory_trees = "10000,50000", "16", 500, 100, 16
        args.search_k_per_face = args.search_k_per_face or "0.5,2,8"
    args.search_k_per_face = [float(s) for s in args.search_k_per_face.split(",")] if args.search_k_per_face else []
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.n_trees = [int(s) for s in args.n_trees.split(",")]
    args.search_k = [int(s) for s in args.search_k.split(",")]
    args.batches = [int(s) for s in args.batches.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"bench_index: {os.cpu_count()} cores, load {load_average()}, model {SFACE_MODEL.as_dict()}")
    if real is not None:
        print(f"real SFace embeddings: {len(real['glint_x'])} glint24 crops, {len(real['portraits'])} ISS portraits")
    results = [run_size_fresh(size, args, real, args.workdir) for size in args.sizes]
    print_table(results, args)
    print("peak RSS, each from its own process: " + "; ".join(
        f"{r['subjects']:,} subjects {r['size_peak_rss_mb']:.0f} MB"
        + (f" (serving the build: {r['serve_peak_rss_mb']:.0f} MB)" if "serve_peak_rss_mb" in r else "") for r in results)
        + f"; load now {load_average()}")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
