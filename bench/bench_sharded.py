"""Sharded exact search on Dask against single-process exact search and Annoy, on SYNTHETIC embeddings.

    nice -n 5 .venv/bin/python bench/bench_sharded.py                 # full run: 1M and 10M faces (< 25 min)
    .venv/bin/python bench/bench_sharded.py --quick                   # 100k faces, < 2 min

Data (SYNTHETIC, every table says so): 128-d vectors from :data:`synthetic.SFACE_MODEL` (fitted
to SFace's real mated / non-mated cosines), one image per identity, written in chunks to an
``(N, 128)`` float32 ``.npy`` in a temporary folder and memory-mapped (10M faces = 5.1 GB).
``--probes`` identities get a second capture as a mated probe.

What it measures, per gallery size, side by side in one run:

1. Exact numpy search in this process (:func:`workbench.gallery.index.exact_topk` over the
   memory-mapped matrix, page cache warm): single probes and batches of ``--batch``, p50/p99 ms
   per probe and per batch; again with one BLAS thread (as each Dask worker runs; needs
   threadpoolctl); float16 storage (the matrix halved, each block widened to float32 for the
   product) where it fits.
2. Sharded exact search on a Dask LocalCluster (``--workers`` single-threaded processes), the
   workbench's :class:`workbench.gallery.sharded.ShardSet`: time for the workers to read and
   hold their shards ("build"), resident memory per worker, single and batched p50/p99, and
   how many probes' top-60 lists differ from single-process exact search (must be 0).
   Also one shard on one worker: the per-shard cost that the 100M projection scales.
3. Annoy at 1M faces per shard (``--annoy-size``; the workbench's own index builds): build
   time, then the curve search_k -> ANN-added misses per 1,000 mated probes (mate in the exact
   top-20 but not in Annoy's re-ranked top-20) -> p50 ms. Points slower than ``--annoy-budget-s``
   per curve point are measured on fewer probes (n is printed; 0 of n is not 0 of 1,000).
   10M faces for Annoy are 10 shards of 1M with the same configuration: 10x the per-shard work
   for a single probe, the same per-shard misses (labelled projection; building ten 1M indexes
   on two shared cores would take the whole budget).
4. A 100M projection from the measured per-shard costs: workers, memory, latency.

Figures, never assertions. The load average is printed with every table: the 2 cores are
shared with other engineers' jobs, so compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from bench_index import build_index, index_view

from workbench.config import Settings
from workbench.gallery.index import exact_topk, load_build

from synthetic import SFACE_MODEL

TOP = 20
#: faces asked per probe, as search.py asks first (top x 3).
K = 3 * TOP
#: rows generated per step when writing the gallery file.
GEN_CHUNK = 1_000_000


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


# ---------------------------------------------------------------------------------------------
# Data


def write_gallery(path: Path, faces: int, probes: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Write a SYNTHETIC (faces, 128) float32 gallery to ``path``; (probes (P, 128), mate row (P,), seconds)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    mates = np.sort(rng.choice(faces, probes, replace=False))
    matrix = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(faces, SFACE_MODEL.dim))
    probe_rows = []
    for start in range(0, faces, GEN_CHUNK):
        stop = min(faces, start + GEN_CHUNK)
        centres = SFACE_MODEL.identities(stop - start, rng)
        matrix[start:stop] = SFACE_MODEL.samples(centres, rng)
        mine = mates[(mates >= start) & (mates < stop)]
        if len(mine):
            probe_rows.append(SFACE_MODEL.samples(centres[mine - start], rng))
    matrix.flush()
    del matrix
    return np.concatenate(probe_rows), mates, time.perf_counter() - started


def open_matrix(path: Path) -> np.ndarray:
    """The gallery, memory-mapped, with its pages read once (warm page cache, as a serving process)."""
    matrix = np.load(path, mmap_mode="r")
    for start in range(0, len(matrix), GEN_CHUNK):
        float(np.asarray(matrix[start : start + GEN_CHUNK, 0]).sum())
        np.asarray(matrix[start : start + GEN_CHUNK]).max()
    return matrix


@contextlib.contextmanager
def one_blas_thread():
    """Limit this process's BLAS to one thread (yields True), if threadpoolctl is installed (else False)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield True


# ---------------------------------------------------------------------------------------------
# Timings


def time_single(search, probes: np.ndarray) -> tuple[list[float], list]:
    """ms per single-probe search, and the results."""
    times, results = [], []
    for probe in probes:
        started = time.perf_counter()
        results.append(search(probe[None]))
        times.append((time.perf_counter() - started) * 1000)
    return times, results


def time_batches(search, probes: np.ndarray, batch: int, batches: int) -> tuple[list[float], list]:
    """ms per batch of ``batch`` probes, for ``batches`` batches, and the results."""
    times, results = [], []
    for b in range(batches):
        chunk = probes[b * batch : (b + 1) * batch]
        if not len(chunk):
            break
        started = time.perf_counter()
        results.append(search(chunk))
        times.append((time.perf_counter() - started) * 1000)
    return times, results


def summary(single: list[float], batched: list[float], batch: int) -> dict:
    return {"single_p50": pct(single, 50), "single_p99": pct(single, 99), "single_n": len(single),
            "batch_p50": pct(batched, 50), "batch_p99": pct(batched, 99), "batch_n": len(batched),
            "batch_per_probe": pct(batched, 50) / batch}


def measure_exact(matrix: np.ndarray, probes: np.ndarray, args, label: str) -> tuple[dict, np.ndarray]:
    """Single-process exact search; (figures, rows (B, K) of the probes of the timed batches)."""
    single, _ = time_single(lambda p: exact_topk(matrix, p, K), probes[: args.single])
    batched, results = time_batches(lambda p: exact_topk(matrix, p, K), probes, args.batch, args.batches)
    figures = summary(single, batched, args.batch)
    figures.update(method=label, load=load_average())
    return figures, np.concatenate([rows for rows, _ in results])


def measure_sharded(client, path: Path, probes: np.ndarray, exact_rows: np.ndarray, args, n_shards: int, key: str) -> dict:
    """Sharded exact search through the workbench's ShardSet; figures incl. memory and mismatches."""
    from workbench.gallery.sharded import ShardSet

    shards = ShardSet.from_file(client, path, n_shards, key=key, group="bench")
    started = time.perf_counter()
    held = shards.hold()
    hold_s = time.perf_counter() - started
    single, _ = time_single(lambda p: shards.topk(p, K), probes[: args.single])
    batched, results = time_batches(lambda p: shards.topk(p, K), probes, args.batch, args.batches)
    rows = np.concatenate([r for r, _ in results])
    differ = int(np.sum(np.any(rows != exact_rows[: len(rows)], axis=1)))
    memory = shards.worker_memory_mb()
    figures = summary(single, batched, args.batch)
    figures.update(method=f"Dask, {n_shards} shard{'s' * (n_shards > 1)} on {len(set(shards.workers))} worker(s)",
                   hold_s=hold_s, held_gb=held / 1e9, worker_mb=max(memory.values()), differ=differ, compared=len(rows),
                   load=load_average())
    return figures


def measure_annoy(matrix: np.ndarray, probes: np.ndarray, mates: np.ndarray, exact_rows: np.ndarray, args, workdir: Path,
                  exact_single_p50: float) -> dict:
    """Annoy build and the curve search_k -> misses -> ms, on the first ``args.annoy_size`` rows."""
    size = min(args.annoy_size, len(matrix))
    inside = mates < size
    sub = np.asarray(matrix[:size])
    shard_probes, shard_mates = probes[inside], mates[inside]
    exact_sub, _ = exact_topk(sub, shard_probes, K)
    mate_in_exact = np.any(exact_sub[:, :TOP] == shard_mates[:, None], axis=1)
    folder = workdir / "annoy"
    build_s, file_bytes = build_index(sub, folder, args.n_trees)
    build = load_build(folder)
    view = index_view(build)
    curve = []
    for per_face in args.search_k_per_face:
        search_k = int(per_face * size)
        times, misses, listed = [], 0, 0
        for probe, mate, in_exact in zip(shard_probes, shard_mates, mate_in_exact):
            started = time.perf_counter()
            ids, _ = view.nearest_faces(probe[None], K, use_index=True, search_k=search_k)
            times.append((time.perf_counter() - started) * 1000)
            if in_exact:
                listed += 1
                misses += int(mate not in ids[0, :TOP])
            if len(times) >= 20 and sum(times) / 1000 > args.annoy_budget_s:
                break
        curve.append({"per_face": per_face, "search_k": search_k, "p50": pct(times, 50), "p99": pct(times, 99),
                      "misses": misses, "listed": listed, "per_1000": 1000 * misses / max(listed, 1),
                      "vs_exact": pct(times, 50) / exact_single_p50})
        print(f"  annoy {size:,} faces, {args.n_trees} trees, search_k {search_k:>10,} ({per_face:g}/face): "
              f"p50 {curve[-1]['p50']:8.1f} ms, misses {misses}/{listed} mated probes; load {load_average()}", flush=True)
    build.close()
    shutil.rmtree(folder, ignore_errors=True)
    return {"size": size, "n_trees": args.n_trees, "build_s": build_s, "file_mb": file_bytes / 1e6, "curve": curve,
            "exact_single_p50": exact_single_p50}


# ---------------------------------------------------------------------------------------------
# Tables


def print_search_table(size: int, rows: list[dict], batch: int) -> None:
    print(f"\n### {size:,} faces, SYNTHETIC SFace-like 128-d, memory-mapped float32 (load {load_average()})\n")
    print(f"| method | build s | memory per worker MB | single p50 ms | single p99 ms | batch {batch} p50 ms | batch {batch} p99 ms "
          "| ms per probe (batched) | lists differing from exact | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        build = f"{r['hold_s']:.1f}" if "hold_s" in r else "-"
        memory = f"{r['worker_mb']:.0f}" if "worker_mb" in r else "-"
        differ = f"{r['differ']} of {r['compared']}" if "differ" in r else "(reference)"
        print(f"| {r['method']} | {build} | {memory} | {r['single_p50']:.1f} | {r['single_p99']:.1f} (n={r['single_n']}) | "
              f"{r['batch_p50']:.0f} | {r['batch_p99']:.0f} (n={r['batch_n']}) | {r['batch_per_probe']:.2f} | {differ} | {r['load']} |")


def print_annoy_table(annoy: dict, exact_by_size: dict[int, float]) -> None:
    size = annoy["size"]
    print(f"\n### Annoy, {size:,} faces per shard, {annoy['n_trees']} trees: build {annoy['build_s']:.0f} s, {annoy['file_mb']:.0f} MB "
          f"(SYNTHETIC; load {load_average()})\n")
    print("| search_k | per face | ANN-added misses per 1,000 mated | mated probes | p50 ms | p99 ms | p50 / best exact single p50 "
          + "".join(f"| {n // size} shards = {n:,} faces (projection): p50 ms / exact p50 " for n in exact_by_size if n > size) + "|")
    print("|---|---|---|---|---|---|---|" + "---|" * sum(1 for n in exact_by_size if n > size))
    for c in annoy["curve"]:
        bound = 1000 * min(1.0, 3.0 / max(c["listed"], 1))  # 95% upper bound when 0 misses: 3/n
        misses = f"{c['per_1000']:.1f}" if c["misses"] else f"0 (95% bound {bound:.0f})"
        extra = "".join(f"| {c['p50'] * n / size:.0f} / {exact_by_size[n]:.0f} " for n in exact_by_size if n > size)
        print(f"| {c['search_k']:,} | {c['per_face']:g} | {misses} | {c['listed']} | {c['p50']:.1f} | {c['p99']:.1f} | "
              f"{c['vs_exact']:.1f}x {extra}|")


def print_projection(per_shard: dict, shard_faces: int, target: int, ram_gb: float) -> None:
    """What ``target`` faces need, from one shard of ``shard_faces`` measured on one worker."""
    shards = math.ceil(target / shard_faces)
    gb = shard_faces * SFACE_MODEL.dim * 4 / 1e9
    print(f"\n### PROJECTION to {target:,} faces from measured per-shard costs ({shard_faces:,} faces on one worker; "
          f"load {load_average()})\n")
    print("| | value | from |")
    print("|---|---|---|")
    print(f"| shards of {shard_faces:,} faces | {shards} | {target:,} / {shard_faces:,} |")
    print(f"| embeddings per shard (float32 / float16) | {gb:.1f} GB / {gb / 2:.1f} GB | {shard_faces:,} x 128 x 4 B |")
    print(f"| worker memory measured, 1 shard | {per_shard['worker_mb'] / 1e3:.1f} GB | RSS of the worker holding it |")
    print(f"| workers (one core each, shards in RAM) | {shards} (e.g. {math.ceil(shards / 4)} machines of 4 cores, "
          f"{4 * per_shard['worker_mb'] / 1e3 * 1.25:.0f} GB RAM each) | one shard per worker, 25% headroom |")
    print(f"| total RAM for embeddings | {shards * gb:.0f} GB float32 | |")
    print(f"| single probe p50 / p99 | {per_shard['single_p50']:.0f} / {per_shard['single_p99']:.0f} ms + network | "
          "shards searched in parallel: one shard's time, merge of k x shards rows negligible |")
    print(f"| batch p50 (ms per batch / per probe) | {per_shard['batch_p50']:.0f} / {per_shard['batch_per_probe']:.1f} | same |")
    print(f"| one machine with {ram_gb:.0f} GB, 2 cores (this one) | {shards * per_shard['single_p50'] / 2 / 1e3:.1f} s per single probe | "
          f"{shards} shards / 2 cores; {shards * gb:.0f} GB does not fit in RAM: memory-mapped from disk, slower |")


# ---------------------------------------------------------------------------------------------


def run(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-sharded-", dir=args.workdir))
    print(f"bench_sharded: {os.cpu_count()} cores, load {load_average()}, workdir {workdir}, SYNTHETIC model {SFACE_MODEL.as_dict()}")
    from workbench.cluster import dask_client

    exact_by_size: dict[int, float] = {}
    per_shard, annoy = None, None
    try:
        with dask_client(Settings(home=workdir, dask_workers=args.workers)) as client:
            client.wait_for_workers(args.workers, timeout=120)
            for size in args.sizes:
                path = workdir / f"gallery-{size}.npy"
                probes, mates, gen_s = write_gallery(path, size, args.probes, args.seed)
                gigabytes = path.stat().st_size / 1e9
                print(f"\n== {size:,} faces: written in {gen_s:.0f} s ({gigabytes:.1f} GB); load {load_average()}", flush=True)
                matrix = open_matrix(path)
                rows = []
                exact, exact_rows = measure_exact(matrix, probes, args, "numpy exact, this process (float32)")
                rows.append(exact)
                print(f"  {exact}", flush=True)
                with one_blas_thread() as limited:
                    if limited:  # as each Dask worker runs: the side-by-side that isolates Dask's own cost
                        figures, _ = measure_exact(matrix, probes, args, "numpy exact, this process, 1 BLAS thread (float32)")
                        rows.append(figures)
                        print(f"  {figures}", flush=True)
                # Annoy is compared with the faster of the two float32 exact searches of this run.
                exact_by_size[size] = min(r["single_p50"] for r in rows)
                if size <= args.float16_max:
                    half = np.asarray(matrix).astype(np.float16)
                    figures, _ = measure_exact(half, probes, args, "numpy exact, this process (float16 storage)")
                    rows.append(figures)
                    del half
                    print(f"  {figures}", flush=True)
                for n_shards in args.shards:
                    figures = measure_sharded(client, path, probes, exact_rows, args, n_shards, key=f"{size}-{n_shards}")
                    rows.append(figures)
                    print(f"  {figures}", flush=True)
                    if n_shards == 1 and size == max(args.sizes):
                        per_shard = figures
                client.run(_drop_held)
                print_search_table(size, rows, args.batch)
                if size == min(args.sizes, key=lambda s: abs(s - args.annoy_size)) and args.annoy:
                    annoy = measure_annoy(matrix, probes, mates, exact_rows, args, workdir, exact_by_size[size])
                del matrix
                if size != max(args.sizes):
                    path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if annoy is not None:
        print_annoy_table(annoy, exact_by_size)
    if per_shard is not None:
        print_projection(per_shard, max(args.sizes), args.project, 24)


def _drop_held() -> None:
    """Worker task: forget the shards held (the next size must not pay for the last one's memory)."""
    from workbench.gallery import sharded

    sharded._HELD.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k faces, few probes (< 2 min)")
    parser.add_argument("--sizes", default="1000000,10000000", help="gallery sizes (faces), comma-separated")
    parser.add_argument("--shards", default="1,2", help="shard counts on the Dask cluster, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--probes", type=int, default=1000, help="mated SYNTHETIC probes")
    parser.add_argument("--single", type=int, default=20, help="probes timed one by one")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=4, help="batches timed")
    parser.add_argument("--float16-max", type=int, default=1_000_000, help="largest size also measured with float16 storage")
    parser.add_argument("--no-annoy", dest="annoy", action="store_false")
    parser.add_argument("--annoy-size", type=int, default=1_000_000, help="faces per Annoy shard")
    parser.add_argument("--n-trees", type=int, default=16)
    parser.add_argument("--search-k-per-face", default="0.25,0.5,1,2,4,8", help="Annoy search_k as multiples of the shard's faces")
    parser.add_argument("--annoy-budget-s", type=float, default=60.0, help="seconds per curve point (fewer probes when slow)")
    parser.add_argument("--project", type=int, default=100_000_000, help="gallery size of the projection")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.probes, args.single, args.batches = "100000", 300, 20, 2
        args.annoy_size, args.annoy_budget_s, args.float16_max = 100_000, 10.0, 100_000
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.shards = [int(s) for s in str(args.shards).split(",")]
    args.search_k_per_face = [float(s) for s in args.search_k_per_face.split(",")]
    command = " ".join([".venv/bin/python", *sys.argv])
    print(f"```\n{command}\n```")
    run(args)
    print(f"\nload average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
