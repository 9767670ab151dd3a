"""Benchmark footage extraction: seconds of footage processed per second of wall time.

    .venv/bin/python bench/bench_footage.py [--seconds 60] [--fps 5] [--workers 2] [--chunk-s 10]

Two long test videos are made by looping clips of ../shared/data (packets are copied, not
re-encoded, so the codec and bit rate are the source's): 1080p from
``street_royal_opera_house.mp4`` (h264, 25 fps) and 640x480 from ``openmpf_hikers_video_02.mp4``
(h264, 29.97 fps), each about ``--seconds`` long. For each, at ``--fps`` frames per second
sampled:

* decode only: PyAV decodes every frame and converts the sampled ones to RGB (the decoder's
  limit on throughput);
* detect only: ``FaceEngine.detect_rows`` on sampled frames already in memory;
* single process: ``footage.pipeline.extract`` (decode, detect, embed, quality, tracking) in one process
  whose engine uses every core (onnxruntime threads = 0);
* cluster: ``distributed.extract_on_dask`` on a LocalCluster of ``--workers`` single-threaded
  worker processes, the video cut into ``--chunk-s`` chunks.

Each scenario runs in its own fresh process (``--scenario``) and reports that process's own peak
resident memory, MB: VmHWM read in the process at the end (see :mod:`peak_memory`; ru_maxrss
would carry over the peak of this parent, which holds every packet of the looped video). For
the cluster: the client process's peak and the largest worker's, each read inside the worker.
Figures, never assertions: wall time depends on the machine and on its load, printed beside
them (other engineers share the cores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak_memory import peak_rss_mb, peak_source

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
CLIPS = {"1080p": "street_royal_opera_house.mp4", "640x480": "openmpf_hikers_video_02.mp4"}
SCENARIOS = ("decode", "detect", "single", "cluster")


def loop_video(source: Path, target: Path, seconds: float) -> float:
    """Copy the video packets of ``source`` again and again, shifted in time, into ``target``.

    Returns the duration written, seconds. Each copy starts on the source's first keyframe, so
    every copy decodes on its own.
    """
    import av

    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        packets = [(bytes(p), p.pts, p.dts, p.is_keyframe) for p in src.demux(stream) if p.size]
        time_base = stream.time_base
        rate = stream.average_rate
        pts = sorted(p[1] for p in packets)
        step = pts[1] - pts[0] if len(pts) > 1 else 1
        span = pts[-1] - pts[0] + step
        copies = max(1, math.ceil(seconds / float(span * time_base)))
        with av.open(str(target), "w", options={"movflags": "faststart"}) as out:
            ostream = out.add_stream_from_template(stream)
            for k in range(copies):
                for data, p_pts, p_dts, key in packets:
                    packet = av.Packet(data)
                    packet.pts, packet.dts = p_pts + k * span, (p_dts if p_dts is not None else p_pts) + k * span
                    packet.time_base, packet.stream, packet.is_keyframe = time_base, ostream, key
                    out.mux(packet)
    del rate
    return copies * float(span * time_base)


def _settings(home: str, **changes):
    from workbench.config import Settings

    return Settings(home=Path(home), **changes)


def scenario_decode(video: str, fps: float, home: str, **_) -> dict:
    from workbench.footage import Sampling, iter_frames

    start = time.perf_counter()
    frames = sum(1 for _ in iter_frames(video, Sampling(fps=fps)))
    return {"wall_s": time.perf_counter() - start, "frames": frames}


def scenario_detect(video: str, fps: float, home: str, frames: int = 40, **_) -> dict:
    """Detection on ``frames`` sampled frames held in memory; throughput = 1 / (fps x time per frame)."""
    from workbench.engine import FaceEngine
    from workbench.footage import Sampling, iter_frames

    engine = FaceEngine.from_settings(_settings(home))
    images = []
    for frame in iter_frames(video, Sampling(fps=fps)):
        images.append(frame.rgb)
        if len(images) == frames:
            break
    engine.detect_rows(images[0])  # warm-up
    start = time.perf_counter()
    faces = sum(len(engine.detect_rows(rgb)) for rgb in images)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "frames": len(images), "faces": faces, "per_frame_ms": 1000 * wall / len(images)}


def scenario_single(video: str, fps: float, home: str, **_) -> dict:
    from workbench.engine import FaceEngine
    from workbench.footage import Sampling, extract

    engine = FaceEngine.from_settings(_settings(home))
    start = time.perf_counter()
    result = extract(video, engine, sampling=Sampling(fps=fps))
    return {"wall_s": time.perf_counter() - start, "frames": result.frames_sampled, "tracks": len(result.tracks)}


def scenario_cluster(video: str, fps: float, home: str, workers: int = 2, chunk_s: float = 10.0, **_) -> dict:
    from workbench.footage import Sampling
    from workbench.footage.distributed import dask_client, extract_on_dask

    settings = _settings(home, dask_workers=workers)
    with dask_client(settings) as client:
        client.wait_for_workers(workers)
        # Engines load on first use in each worker; load them outside the timing.
        client.run(lambda: __import__("workbench.footage.distributed", fromlist=["worker_engine"]).worker_engine(settings) and None)
        start = time.perf_counter()
        (result,) = extract_on_dask([video], settings, sampling=Sampling(fps=fps), chunk_s=chunk_s, client=client)
        wall = time.perf_counter() - start
        # Read in each worker (a process of its own since the cluster started in this scenario).
        worker_rss = client.run(_worker_peak_rss_mb)
    return {
        "wall_s": wall,
        "frames": result.frames_sampled,
        "tracks": len(result.tracks),
        "worker_peak_rss_mb": round(max(worker_rss.values()), 1),
    }


def _worker_peak_rss_mb() -> float:
    """Peak RSS (MB) of the Dask worker process this runs in.

    Defined here and importing :mod:`peak_memory` when called, so cloudpickle ships it by value
    (this is ``__main__``) and the worker needs nothing but the bench folder on its path, which
    the spawned worker inherits.
    """
    from peak_memory import peak_rss_mb as worker_peak

    return worker_peak()


def run_child(args) -> None:
    """One scenario in this process; prints one JSON line."""
    func = globals()[f"scenario_{args.scenario}"]
    out = func(args.video, args.fps, args.home, workers=args.workers, chunk_s=args.chunk_s)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each looped test video (default 60)")
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second sampled (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--chunk-s", type=float, default=10.0, help="seconds of footage per Dask task (default 10)")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these scenarios (repeatable)")
    parser.add_argument("--sizes", choices=sorted(CLIPS), action="append", help="run only these videos (repeatable)")
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        run_child(args)
        return 0
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED} (set WORKBENCH_SHARED_DATA)", file=sys.stderr)
        return 1
    from workbench.models import ensure_default_pack

    with tempfile.TemporaryDirectory(prefix="bench-footage-") as tmp:
        home = Path(tmp) / "home"
        ensure_default_pack(home / "models")
        print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores; "
              f"peak RSS per scenario from its own process ({peak_source()})")
        print(f"sampling {args.fps:g} frames/s; cluster: {args.workers} workers x 1 thread, chunks of {args.chunk_s:g} s")
        rows = []
        for size in args.sizes or sorted(CLIPS, reverse=True):
            video = Path(tmp) / f"{size}.mp4"
            seconds = loop_video(SHARED / "video" / CLIPS[size], video, args.seconds)
            for scenario in args.only or SCENARIOS:
                cmd = [sys.executable, __file__, "--scenario", scenario, "--video", str(video), "--home", str(home),
                       "--fps", str(args.fps), "--workers", str(args.workers), "--chunk-s", str(args.chunk_s)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{size} {scenario}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                    continue
                data = json.loads(proc.stdout.strip().splitlines()[-1])
                footage_s = data["frames"] / args.fps if scenario == "detect" else seconds
                data.update(size=size, scenario=scenario, footage_s=round(footage_s, 2), load=round(os.getloadavg()[0], 2))
                data["footage_s_per_wall_s"] = round(footage_s / data["wall_s"], 3)
                rows.append(data)
                print(json.dumps(data), file=sys.stderr)
        print()
        print(f"{'video':<8} {'scenario':<8} {'footage s/wall s':>16} {'wall s':>8} {'frames':>7} {'peak RSS MB':>12} {'load':>5}  notes")
        for r in rows:
            notes = []
            if "per_frame_ms" in r:
                notes.append(f"{r['per_frame_ms']:.0f} ms/frame")
            if "tracks" in r:
                notes.append(f"{r['tracks']} tracks")
            if "worker_peak_rss_mb" in r:
                notes.append(f"largest worker {r['worker_peak_rss_mb']:.0f} MB")
            print(f"{r['size']:<8} {r['scenario']:<8} {r['footage_s_per_wall_s']:>16.3f} {r['wall_s']:>8.1f} {r['frames']:>7} "
                  f"{r['peak_rss_mb']:>12.0f} {r['load']:>5.2f}  {', '.join(notes)}")
        print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
