"""A corpus of bad input, run through the command line: every kind must end in a clear error or
a clean result, never a traceback, and a refused command must leave the workspace as it was.

For each kind the test checks that:

* the exit status is 0, 1 or 2 (and the one expected for that kind);
* ``Traceback`` never appears on stderr, and an error names what is at fault;
* when the command is refused (status 1 or 2), the workspace is unchanged: the same files (by
  name and content; the database by its logical content, an ``iterdump`` without the audit
  log's refusal entries, or byte for byte when it is not a workbench database).

Most kinds run in-process through :func:`workbench.cli.main` (several per copy of one enrolled
workspace, with the session's face engine, so the whole corpus takes seconds); a sample runs as
real ``python -m workbench`` processes to prove the process-level behaviour. Every input is
written by the tests: nothing binary is committed. ``pytest -s`` shows the tally; it is also
printed as a table at the end of the module.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main

from conftest import face_crop, write_custody_folder
from factories import encode, png_claiming_size, save, truncated_jpeg
from videos import crossing, render, write_video

CASE = "OP-BAD"
TALLY: list[dict] = []


# ---------------------------------------------------------------------------------------------
# The inputs: written once per module


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, t1_rgb, t1_faces, tom_hanks_path, astronaut_path) -> Path:
    """A folder of bad (and a few good) files; names are the corpus's vocabulary."""
    root = tmp_path_factory.mktemp("bad-inputs")
    face = face_crop(t1_rgb, t1_faces[2], margin=0.8)
    save(face, root / "probe.png")
    rng = np.random.default_rng(7)
    # images
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + rng.bytes(3000))
    (root / "truncated.jpg").write_bytes(truncated_jpeg(t1_rgb, 0.3))
    (root / "empty.jpg").write_bytes(b"")
    (root / "bomb.png").write_bytes(png_claiming_size(100_000, 100_000))
    (root / "text.jpg").write_text("this is not a photo\n")
    (root / "truncated.png").write_bytes(encode(face, "PNG")[:200])
    (root / "html.png").write_text("<html><body>not an image</body></html>")
    (root / "folder.jpg").mkdir()
    os.symlink("loop.jpg", root / "loop.jpg")
    os.symlink(root / "nowhere.jpg", root / "broken.jpg")
    os.mkfifo(root / "fifo.jpg")
    from skimage import data

    save(data.coffee(), root / "coffee.png")
    save(np.zeros((1, 1, 3), np.uint8), root / "tiny.png")
    (root / "gif.jpg").write_bytes(encode(face, "GIF"))
    bmp = bytearray(encode(np.zeros((4, 4, 3), np.uint8), "BMP"))
    struct.pack_into("<ii", bmp, 18, 90_000, 90_000)  # BITMAPINFOHEADER width, height
    (root / "bomb.bmp").write_bytes(bytes(bmp))
    exif = bytearray(encode(face, "JPEG", quality=80, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\xff\xff"))
    (root / "exif.jpg").write_bytes(bytes(exif))
    (root / "dup-a").mkdir()
    (root / "dup-b").mkdir()
    save(face, root / "dup-a" / "same.png")
    save(face, root / "dup-b" / "same.png")
    # videos
    frames = render([crossing(face, seconds=2.0, face_height=120)], seconds=2.0, fps=10)
    clip = write_video(root / "clip.mp4", frames, fps=10)
    data_bytes = clip.read_bytes()
    (root / "truncated.mp4").write_bytes(data_bytes[: len(data_bytes) // 3])
    no_index = write_video(root / "noindex-full.mp4", frames, fps=10, faststart=False)
    (root / "noindex.mp4").write_bytes(no_index.read_bytes()[: no_index.stat().st_size // 2])
    no_index.unlink()
    (root / "text.mp4").write_text("not a video\n")
    (root / "empty.mp4").write_bytes(b"")
    (root / "random.mp4").write_bytes(rng.bytes(20_000))
    (root / "no-stills").mkdir()
    (root / "no-stills" / "notes.txt").write_text("nothing here")
    (root / "a-file").write_text("a file where a folder is expected")
    # custody folders
    custody = write_custody_folder(root / "custody", t1_rgb, t1_faces, tom_hanks_path, astronaut_path)
    links = root / "custody-links"
    (links / "LINKED-1").mkdir(parents=True)
    os.symlink(custody / "HANKS-1" / "custody.png", links / "LINKED-1" / "custody.png")
    os.symlink("/etc/passwd", links / "LINKED-1" / "passwd.png")
    os.symlink(custody / "COLLINS-1", links / "LINKED-2")
    # manifests
    header = "subject_id,image_path,name,dob,sex,ethnicity,custody_date\n"
    manifests = {
        "missing-column.csv": "subject_id,name\nP-1,Someone\n",
        "unknown-column.csv": "subject_id,image_path,height\nP-1,probe.png,180\n",
        "bad-ids.csv": header + "P/1,probe.png,,,,,\n\x07BELL,probe.png,,,,,\n" + "X" * 200 + ",probe.png,,,,,\n.hidden,probe.png,,,,,\n",
        "outside.csv": header + "P-1,../outside.png,,,,,\nP-2,/etc/passwd,,,,,\nP-3,../../../../../../etc/shadow,,,,,\n",
        "duplicates.csv": header + "P-9,probe.png,,,,,\nP-9,probe.png,,,,,\nP-10,probe.png,,,,,\n",
        "bad-fields.csv": header
        + "P-1,probe.png,,1956-13-40,M,,\nP-2,probe.png,,,male,,\nP-3,probe.png,,,,W1 with spaces and far too long,\n",
        "short-rows.csv": header + "P-1\nP-2,probe.png,,,\n",
        "empty.csv": "",
        "header-only.csv": header,
        "nul.csv": header + "P-1,pro\x00be.png,,,,,\n",
        "huge-field.csv": header + "P-1," + "a" * 200_000 + ",,,,,\n",
        "many-missing.csv": header + "".join(f"P-{i},missing-{i}.png,,,,,\n" for i in range(5000)),
    }
    for name, text in manifests.items():
        (root / "manifests" / name).parent.mkdir(exist_ok=True)
        (root / "manifests" / name).write_text(text, encoding="utf-8")
    save(face, root / "manifests" / "probe.png")
    save(face, root / "outside.png")
    (root / "manifests" / "latin1.csv").write_bytes(header.encode() + "P-1,caf\xe9.png,Jos\xe9,,,,\n".encode("latin-1"))
    (root / "manifests" / "folder.csv").mkdir()
    # pairs
    pairs = {
        "short-row.csv": "a,b,same\nHANKS-1/custody.png\n",
        "missing-column.csv": "a,b\nx.png,y.png\n",
        "bad-label.csv": "a,b,same\nHANKS-1/custody.png,COLLINS-1/custody.png,2\n",
        "empty.csv": "",
        "empty-path.csv": "a,b,same\n,COLLINS-1/custody.png,0\n",
        "one-class.csv": "a,b,same\nHANKS-1/custody.png,COLLINS-1/custody.png,0\n",
    }
    for name, text in pairs.items():
        (root / "pairs" / name).parent.mkdir(exist_ok=True)
        (root / "pairs" / name).write_text(text)
    (root / "pairs" / "latin1.csv").write_bytes("a,b,same\ncaf\xe9.png,b.png,1\n".encode("latin-1"))
    for folder in (root / "one-identity" / "ONLY", root / "two-identities" / "A", root / "two-identities" / "B"):
        folder.mkdir(parents=True)
        save(face, folder / "1.png")
        save(face, folder / "2.png")
    return root


# ---------------------------------------------------------------------------------------------
# One enrolled workspace per module, copied for each group


@pytest.fixture(scope="module")
def shared_engine(engine):
    """Every in-process command uses the session's engine (loading one costs a second)."""
    from workbench.engine import FaceEngine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FaceEngine, "from_settings", classmethod(lambda cls, settings, threads=0: engine))
        yield engine


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, session_home, inputs, shared_engine) -> Path:
    """A workspace with the custody folder enrolled, an index, an open case and one search."""
    home = tmp_path_factory.mktemp("bad-template") / "ws"
    home.mkdir(mode=0o700)
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    for argv in (
        ["gallery", "enrol", str(inputs / "custody"), "--json"],
        ["gallery", "rebuild", "--json"],
        ["case", "new", CASE, "--offence", "robbery", "--purpose", "bad-input corpus", "--json"],
        ["search", str(inputs / "probe.png"), "--case", CASE, "--json"],
    ):
        status, _, err = cli(home, argv)
        assert status == 0, err
    return home


@dataclass
class Env:
    home: Path
    inputs: Path
    tmp: Path


@dataclass
class Bad:
    """One kind of bad input: the command line (``--home`` added unless ``own_home``), the exit
    statuses allowed, a text stderr must hold, and a change to make to the workspace first."""

    kind: str
    argv: Callable[[Env], list[str]]
    expect: frozenset = frozenset({1})
    says: Callable[[Env], str] | str | None = None
    setup: Callable[[Env], None] | None = None
    own_home: bool = False
    extra: dict = field(default_factory=dict)


def cli(home: Path | None, argv: list[str]) -> tuple[int, str, str]:
    """Run the command line in this process; (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    full = (["--home", str(home)] if home is not None else []) + list(argv)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(full)
        except SystemExit as exc:  # argparse: usage errors
            status = exc.code if isinstance(exc.code, int) else 1
    return status, out.getvalue(), err.getvalue()


# -- what "unchanged" means ------------------------------------------------------------------------

TRANSIENT = ("-wal", "-shm", "-journal")


def _db_digest(path: Path) -> str:
    """The logical content of a workbench database without the audit log's refusal entries
    (refusing is recorded, by design); any other file (foreign, damaged), byte for byte."""
    raw = path.read_bytes()
    from workbench.db import APPLICATION_ID

    if len(raw) < 100 or int.from_bytes(raw[68:72], "big") != APPLICATION_ID:
        return "bytes:" + hashlib.sha256(raw).hexdigest()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            lines = [line for line in conn.iterdump() if not (line.startswith('INSERT INTO "audit_log"') and "refused" in line)]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return "bytes:" + hashlib.sha256(raw).hexdigest()
    return "dump:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def snapshot(home: Path) -> dict:
    """Every file and folder under ``home`` (links not followed; logs and SQLite's transient
    files left out) with its content digest."""
    if not home.is_dir() or not os.access(home, os.R_OK | os.X_OK):
        return {"<home>": hashlib.sha256(home.read_bytes()).hexdigest() if home.is_file() else str(os.path.lexists(home))}
    state = {}
    for dirpath, dirnames, filenames in os.walk(home):
        rel = Path(dirpath).relative_to(home)
        dirnames[:] = [d for d in dirnames if not (rel == Path(".") and d == "logs") and not (Path(dirpath) / d).is_symlink()]
        for d in dirnames:
            state[str(rel / d) + "/"] = "dir"
        for name in filenames:
            path = Path(dirpath) / name
            if name.endswith(TRANSIENT):
                continue
            if path.is_symlink():
                state[str(rel / name)] = "link:" + os.readlink(path)
            elif not path.is_file():
                state[str(rel / name)] = "special"  # a pipe: never read
            elif name == "workbench.db":
                state[str(rel / name)] = _db_digest(path)
            else:
                state[str(rel / name)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def run_group(env: Env, cases: list[Bad], group: str) -> list[str]:
    """Run each case in turn on ``env.home``; the problems found (empty = all good)."""
    problems = []
    for case in cases:
        if case.setup:
            case.setup(env)
        home = env.home
        before = snapshot(home)
        argv = case.argv(env)
        status, out, err = cli(None if case.own_home else home, argv)
        after = snapshot(home)
        changed = before != after
        refused = status in (1, 2)
        TALLY.append({"group": group, "kind": case.kind, "status": status, "unchanged": not changed})
        where = f"[{group}] {case.kind}: workbench {' '.join(argv)}"
        if status not in (0, 1, 2):
            problems.append(f"{where}: exit status {status}")
        if status not in case.expect:
            problems.append(f"{where}: exit status {status}, expected {sorted(case.expect)}; stderr: {err.strip()[-600:]}")
        if "Traceback" in err or "Traceback" in out:
            problems.append(f"{where}: printed a traceback:\n{err[-2000:]}")
        if "internal error" in err:
            problems.append(f"{where}: an internal error, not a clear one: {err.strip()[-600:]}")
        if refused and changed:
            diff = sorted(set(before.items()) ^ set(after.items()))
            problems.append(f"{where}: refused (status {status}) but changed the workspace: {diff[:6]}")
        says = case.says(env) if callable(case.says) else case.says
        if says and says not in err:
            problems.append(f"{where}: stderr does not say {says!r}: {err.strip()[-600:]}")
        if status == 1 and "--json" in argv:
            document = json.loads(out)  # exactly one JSON document, also for errors
            if "error" not in document:
                problems.append(f"{where}: JSON without an error: {out[:300]}")
    return problems


def _copy(enrolled: Path, target: Path) -> Path:
    shutil.copytree(enrolled, target, symlinks=True)
    return target


def I(name: str) -> Callable[[Env], str]:  # noqa: E743  (a short name keeps the table readable)
    return lambda env: str(env.inputs / name)


# ---------------------------------------------------------------------------------------------
# The corpus, by group

IMAGES = [
    Bad("corrupt JPEG", lambda e: ["faces", I("corrupt.jpg")(e)], says="corrupt.jpg"),
    Bad("truncated JPEG", lambda e: ["faces", I("truncated.jpg")(e)], expect=frozenset({0, 1})),
    Bad("zero-byte image", lambda e: ["faces", I("empty.jpg")(e)], says="empty"),
    Bad("PNG claiming 100000x100000", lambda e: ["faces", I("bomb.png")(e)], says="megapixel"),
    Bad("BMP claiming 90000x90000", lambda e: ["faces", I("bomb.bmp")(e)], says="bomb.bmp"),
    Bad("text named .jpg", lambda e: ["faces", I("text.jpg")(e)], says="not an image"),
    Bad("truncated PNG", lambda e: ["faces", I("truncated.png")(e)], says="truncated.png"),
    Bad("HTML named .png", lambda e: ["faces", I("html.png")(e)], says="html.png"),
    Bad("folder named .jpg", lambda e: ["faces", I("folder.jpg")(e)], says="folder"),
    Bad("symlink loop", lambda e: ["faces", I("loop.jpg")(e)], says="symlink loop"),
    Bad("broken symlink", lambda e: ["faces", I("broken.jpg")(e)], says="broken symbolic link"),
    Bad("FIFO named .jpg", lambda e: ["faces", I("fifo.jpg")(e)], says="not a regular file"),
    Bad("missing image", lambda e: ["compare", I("nothing.jpg")(e), I("probe.png")(e)], says="no such file"),
    Bad("image without a face", lambda e: ["compare", I("coffee.png")(e), I("probe.png")(e), "--json"], says="no face found"),
    Bad("1x1 pixel image", lambda e: ["faces", I("tiny.png")(e), "--json"], expect=frozenset({0})),
    Bad("GIF named .jpg", lambda e: ["faces", I("gif.jpg")(e)], expect=frozenset({0})),
    Bad("malformed EXIF", lambda e: ["faces", I("exif.jpg")(e)], expect=frozenset({0, 1})),
]

SEARCH = [
    Bad("corrupt probe image", lambda e: ["search", I("corrupt.jpg")(e), "--case", CASE], says="corrupt.jpg"),
    Bad("two probes with one name", lambda e: ["search", I("dup-a/same.png")(e), I("dup-b/same.png")(e), "--case", CASE], says="same name"),
    Bad("search without a case", lambda e: ["search", I("probe.png")(e)], says="case"),
    Bad("search in an unknown case", lambda e: ["search", I("probe.png")(e), "--case", "NOPE-1"], says="NOPE-1"),
    Bad("top 0", lambda e: ["search", I("probe.png")(e), "--case", CASE, "--top", "0"], says="top"),
    Bad("negative top", lambda e: ["search", I("probe.png")(e), "--case", CASE, "--top", "-5"], says="top"),
    Bad("threshold above 1", lambda e: ["search", I("probe.png")(e), "--case", CASE, "--threshold", "2"], says="threshold"),
    Bad("threshold NaN", lambda e: ["search", I("probe.png")(e), "--case", CASE, "--threshold", "nan"], says="threshold"),
    Bad("unknown mode", lambda e: ["search", I("probe.png")(e), "--case", CASE, "--mode", "guess"], expect=frozenset({2})),
    Bad("replay of an unknown search", lambda e: ["search", "--replay", "9999"], says="9999"),
    Bad("replay with probe files", lambda e: ["search", I("probe.png")(e), "--replay", "1"], says="replay"),
    Bad("replay id not a number", lambda e: ["search", "--replay", "one"], expect=frozenset({2})),
    Bad("text named .mp4 as probe", lambda e: ["search", I("text.mp4")(e), "--case", CASE], says="text.mp4"),
    Bad("probe is a FIFO", lambda e: ["search", I("fifo.jpg")(e), "--case", CASE], says="fifo.jpg"),
]


def _damage_recorded_probe(env: Env) -> None:
    conn = sqlite3.connect(env.home / "workbench.db")
    conn.execute("UPDATE search_probes SET embeddings = x'0102', bbox_json = '{not json' WHERE search_id = 1")
    conn.commit()
    conn.close()


SEARCH_DAMAGE = [
    Bad("replay of a damaged recorded probe", lambda e: ["search", "--replay", "1"], says="search 1", setup=_damage_recorded_probe),
]

FOOTAGE = [
    Bad("truncated video", lambda e: ["footage", "extract", I("truncated.mp4")(e), "--json"], expect=frozenset({0, 1})),
    Bad("mp4 cut before its index", lambda e: ["footage", "extract", I("noindex.mp4")(e)], says="noindex.mp4"),
    Bad("text named .mp4", lambda e: ["footage", "extract", I("text.mp4")(e), "--json"], says="text.mp4"),
    Bad("zero-byte video", lambda e: ["footage", "extract", I("empty.mp4")(e)], says="empty"),
    Bad("random bytes .mp4", lambda e: ["footage", "extract", I("random.mp4")(e)], says="random.mp4"),
    Bad("fps 0", lambda e: ["footage", "extract", I("clip.mp4")(e), "--fps", "0"], says="sampling rate"),
    Bad("negative fps", lambda e: ["footage", "extract", I("clip.mp4")(e), "--fps", "-2"], says="sampling rate"),
    Bad("fps NaN", lambda e: ["footage", "extract", I("clip.mp4")(e), "--fps", "nan"], says="sampling rate"),
    Bad("negative start", lambda e: ["footage", "extract", I("clip.mp4")(e), "--start", "-5"], says="start"),
    Bad("end before start", lambda e: ["footage", "extract", I("clip.mp4")(e), "--start", "3", "--end", "1"], says="end"),
    Bad("--save-crops naming a file", lambda e: ["footage", "extract", I("clip.mp4")(e), "--save-crops", I("a-file")(e)], says="a-file"),
    Bad("zero workers", lambda e: ["footage", "extract", I("clip.mp4")(e), "--workers", "0"], says="workers"),
    Bad("zero chunk length", lambda e: ["footage", "extract", I("clip.mp4")(e), "--chunk-s", "0"], says="chunk"),
    Bad("folder without stills", lambda e: ["footage", "extract", I("no-stills")(e)], says="no still images"),
    Bad("missing footage", lambda e: ["footage", "extract", I("gone.mp4")(e)], says="no such file"),
]

MANIFESTS = [
    Bad("manifest missing a column", lambda e: ["gallery", "enrol", "--manifest", I("manifests/missing-column.csv")(e)], says="image_path"),
    Bad(
        "manifest with an unknown column", lambda e: ["gallery", "enrol", "--manifest", I("manifests/unknown-column.csv")(e)], says="height"
    ),
    Bad("bad subject ids", lambda e: ["gallery", "enrol", "--manifest", I("manifests/bad-ids.csv")(e), "--json"], expect=frozenset({0})),
    Bad(
        "paths outside the manifest folder",
        lambda e: ["gallery", "enrol", "--manifest", I("manifests/outside.csv")(e), "--json"],
        expect=frozenset({0}),
    ),
    Bad("duplicate rows", lambda e: ["gallery", "enrol", "--manifest", I("manifests/duplicates.csv")(e), "--json"], expect=frozenset({0})),
    Bad(
        "bad dates, sex codes, ethnicity",
        lambda e: ["gallery", "enrol", "--manifest", I("manifests/bad-fields.csv")(e), "--json"],
        expect=frozenset({0}),
    ),
    Bad("short rows", lambda e: ["gallery", "enrol", "--manifest", I("manifests/short-rows.csv")(e), "--json"], expect=frozenset({0})),
    Bad("non-UTF-8 manifest", lambda e: ["gallery", "enrol", "--manifest", I("manifests/latin1.csv")(e)], says="UTF-8"),
    Bad("empty manifest", lambda e: ["gallery", "enrol", "--manifest", I("manifests/empty.csv")(e)], says="empty"),
    Bad("manifest with a header only", lambda e: ["gallery", "enrol", "--manifest", I("manifests/header-only.csv")(e)], says="no rows"),
    Bad(
        "manifest with a NUL byte",
        lambda e: ["gallery", "enrol", "--manifest", I("manifests/nul.csv")(e), "--json"],
        expect=frozenset({0}),  # the row is refused with its reason; the rest goes on
    ),
    Bad(
        "manifest with a 200 kB field",
        lambda e: ["gallery", "enrol", "--manifest", I("manifests/huge-field.csv")(e)],
        says="huge-field.csv",
    ),
    Bad(
        "5000 rows of missing images",
        lambda e: ["gallery", "enrol", "--manifest", I("manifests/many-missing.csv")(e), "--json"],
        expect=frozenset({0}),
    ),
    Bad("manifest is a folder", lambda e: ["gallery", "enrol", "--manifest", I("manifests/folder.csv")(e)], says="folder"),
    Bad("manifest missing", lambda e: ["gallery", "enrol", "--manifest", I("manifests/none.csv")(e)], says="no such manifest"),
    Bad(
        "folder and manifest both",
        lambda e: ["gallery", "enrol", I("custody")(e), "--manifest", I("manifests/duplicates.csv")(e)],
        says="not both",
    ),
    Bad("enrol folder is a file", lambda e: ["gallery", "enrol", I("a-file")(e)], says="a-file"),
    Bad("symbolic links in the custody folder", lambda e: ["gallery", "enrol", I("custody-links")(e), "--json"], expect=frozenset({0})),
    Bad("batch of 0", lambda e: ["gallery", "enrol", I("custody")(e), "--batch", "0"], says="batch"),
    Bad("report path is a folder", lambda e: ["gallery", "enrol", I("custody")(e), "--report", I("no-stills")(e)], says="is a folder"),
    Bad("rebuild with 0 trees", lambda e: ["gallery", "rebuild", "--n-trees", "0"], says="n-trees"),
    Bad("remove an unknown subject", lambda e: ["gallery", "remove", "NOBODY-1"], says="NOBODY-1"),
]

PAIRS = [
    Bad(
        "pairs CSV with a short row",
        lambda e: ["evaluate", "pairs", "--pairs", I("pairs/short-row.csv")(e), "--images", I("custody")(e)],
        says="line 2",
    ),
    Bad(
        "pairs CSV missing a column",
        lambda e: ["evaluate", "pairs", "--pairs", I("pairs/missing-column.csv")(e), "--images", I("custody")(e)],
        says="same",
    ),
    Bad(
        "pairs label 2", lambda e: ["evaluate", "pairs", "--pairs", I("pairs/bad-label.csv")(e), "--images", I("custody")(e)], says="1 or 0"
    ),
    Bad(
        "empty pairs CSV",
        lambda e: ["evaluate", "pairs", "--pairs", I("pairs/empty.csv")(e), "--images", I("custody")(e)],
        says="empty.csv",
    ),
    Bad(
        "pairs CSV with an empty path",
        lambda e: ["evaluate", "pairs", "--pairs", I("pairs/empty-path.csv")(e), "--images", I("custody")(e)],
        says="empty",
    ),
    Bad(
        "pairs of one class only",
        lambda e: ["evaluate", "pairs", "--pairs", I("pairs/one-class.csv")(e), "--images", I("custody")(e)],
        says="same-person",
    ),
    Bad(
        "non-UTF-8 pairs CSV",
        lambda e: ["evaluate", "pairs", "--pairs", I("pairs/latin1.csv")(e), "--images", I("custody")(e)],
        says="UTF-8",
    ),
    Bad(
        "--images not a folder",
        lambda e: ["evaluate", "pairs", "--pairs", I("pairs/bad-label.csv")(e), "--images", I("a-file")(e)],
        says="not a folder",
    ),
    Bad(
        "make-pairs on one identity",
        lambda e: ["evaluate", "make-pairs", I("one-identity")(e), "--out", str(e.tmp / "p.csv")],
        says="identity",
    ),
    Bad(
        "make-pairs --out naming a folder",
        lambda e: ["evaluate", "make-pairs", I("two-identities")(e), "--out", I("no-stills")(e)],
        says="is a folder",
    ),
]

CASES = [
    Bad(
        "case reference with control characters",
        lambda e: ["case", "new", "OP-\x1b[31mRED", "--offence", "x", "--purpose", "y"],
        says="control",
    ),
    Bad("case reference of 65 characters", lambda e: ["case", "new", "R" * 65, "--offence", "x", "--purpose", "y"], says="64"),
    Bad("empty case reference", lambda e: ["case", "new", "  ", "--offence", "x", "--purpose", "y"], says="reference"),
    Bad("case without a purpose", lambda e: ["case", "new", "OP-2", "--offence", "x"], expect=frozenset({2})),
    Bad("empty purpose", lambda e: ["case", "new", "OP-2", "--offence", "x", "--purpose", " "], says="purpose"),
    Bad("duplicate case", lambda e: ["case", "new", CASE, "--offence", "x", "--purpose", "y"], says="already exists"),
    Bad("show an unknown case", lambda e: ["case", "show", "NOPE-1", "--json"], says="NOPE-1"),
    Bad("close an unknown case", lambda e: ["case", "close", "NOPE-1"], says="NOPE-1"),
    Bad("unknown case status", lambda e: ["case", "list", "--status", "lost"], expect=frozenset({2})),
    Bad("verdict on an unknown search", lambda e: ["review", "first", "999", "T1-2", "--verdict", "no match", "--reason", "r"], says="999"),
    Bad(
        "verdict with an empty reason", lambda e: ["review", "first", "1", "T1-2", "--verdict", "no match", "--reason", "  "], says="reason"
    ),
    Bad(
        "verdict on a subject not listed",
        lambda e: ["review", "first", "1", "NOBODY", "--verdict", "no match", "--reason", "r"],
        says="NOBODY",
    ),
    Bad("unknown verdict", lambda e: ["review", "first", "1", "T1-2", "--verdict", "maybe", "--reason", "r"], expect=frozenset({2})),
    Bad("second review without a first", lambda e: ["review", "second", "1", "T1-2", "--confirm", "--reason", "r"], says="first"),
    Bad("review status of search -1", lambda e: ["review", "status", "-1"], expect=frozenset({2}), says="record number"),
    Bad("review status of a search beyond 64 bits", lambda e: ["review", "status", "9" * 30], expect=frozenset({2}), says="record number"),
    Bad("replay of a search beyond 64 bits", lambda e: ["search", "--replay", "9" * 30], expect=frozenset({2}), says="record number"),
    Bad("a pack name that is a path", lambda e: ["--pack", "../../etc", "faces", I("probe.png")(e)], says="pack"),
    Bad("report of an unknown case", lambda e: ["report", "NOPE-1", "--out", str(e.tmp / "r.pdf")], says="NOPE-1"),
    Bad("report --out naming a folder", lambda e: ["report", CASE, "--out", I("no-stills")(e)], says="is a folder"),
    Bad("report with an unknown format", lambda e: ["report", CASE, "--out", str(e.tmp / "r.docx")], says="r.docx"),
    Bad("audit export --out naming a folder", lambda e: ["audit", "export", "--out", I("no-stills")(e)], says="is a folder"),
    Bad("audit export under a file", lambda e: ["audit", "export", "--out", I("a-file")(e) + "/audit.csv"], says="a-file"),
]

SETTINGS = [
    Bad("min_face_px too small", lambda e: ["settings", "set", "min_face_px", "3"], says="at least 8"),
    Bad("top not a number", lambda e: ["settings", "set", "top", "many"], says="top"),
    Bad("threshold NaN setting", lambda e: ["settings", "set", "threshold", "nan"], says="threshold"),
    Bad("footage_fps infinite", lambda e: ["settings", "set", "footage_fps", "inf"], says="footage_fps"),
    Bad("unknown setting", lambda e: ["settings", "set", "colour", "red"], says="colour"),
    Bad("relative manifest root", lambda e: ["settings", "set", "manifest_roots", "relative/folder"], says="absolute"),
    Bad("audit key in the workspace's settings", lambda e: ["settings", "set", "audit_key_file", "/tmp/key"], says="audit_key_file"),
    Bad("home is not a setting", lambda e: ["settings", "set", "home", "/tmp"], says="home"),
]


def _write_toml(text: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        (env.home / "workbench.toml").write_text(text)

    return setup


def _toml_folder(env: Env) -> None:
    (env.home / "workbench.toml").unlink(missing_ok=True)
    (env.home / "workbench.toml").mkdir()


SETTINGS_FILE = [
    Bad("settings file that is not TOML", lambda e: ["case", "list"], setup=_write_toml("top = = 3\n"), says="not valid TOML"),
    Bad("settings file with a wrong type", lambda e: ["case", "list"], setup=_write_toml("top = 'many'\n"), says="top"),
    Bad("settings file with an unknown key", lambda e: ["case", "list"], setup=_write_toml("colour = 'red'\n"), says="colour"),
    Bad(
        "settings file naming the audit key",
        lambda e: ["case", "list"],
        setup=_write_toml("audit_key_file = '/tmp/k'\n"),
        says="audit_key_file",
    ),
    Bad("settings file is a folder", lambda e: ["case", "list"], setup=_toml_folder, says="workbench.toml"),
]


def _foreign_sqlite(env: Env) -> None:
    (env.home / "workbench.db").unlink()
    conn = sqlite3.connect(env.home / "workbench.db")
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('a', '1')")
    conn.commit()
    conn.close()


def _other_application(env: Env) -> None:
    (env.home / "workbench.db").unlink()
    conn = sqlite3.connect(env.home / "workbench.db")
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE audit_log (x)")
    conn.commit()
    conn.close()


def _fifo_database(env: Env) -> None:
    (env.home / "workbench.db").unlink()
    os.mkfifo(env.home / "workbench.db", 0o600)


def _text_database(env: Env) -> None:
    (env.home / "workbench.db").write_text("not a database at all\n" * 20)


def _newer_database(env: Env) -> None:
    conn = sqlite3.connect(env.home / "workbench.db")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()


def _damaged_database(env: Env) -> None:
    path = env.home / "workbench.db"
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data), 3 * page):  # garbage in the middle of pages; the header survives
        data[start + 100 : start + 1100] = b"\xa5" * 1000
    path.write_bytes(bytes(data))


WORKSPACES = [
    Bad("--home names a regular file", lambda e: ["--home", I("a-file")(e), "case", "list"], own_home=True, says="a-file"),
    Bad("--home is empty", lambda e: ["--home", "", "case", "list"], own_home=True, says="empty"),
    Bad("--home under a file", lambda e: ["--home", I("a-file")(e) + "/ws", "case", "list"], own_home=True, says="a-file"),
    Bad("--home is a broken symlink", lambda e: ["--home", I("broken.jpg")(e), "case", "list"], own_home=True, says="broken.jpg"),
    Bad("unrelated SQLite file as the database", lambda e: ["gallery", "stats"], setup=_foreign_sqlite, says="not a workbench database"),
    Bad("another application's database", lambda e: ["case", "list"], setup=_other_application, says="another application"),
    Bad("text file as the database", lambda e: ["case", "list", "--json"], setup=_text_database, says="not a SQLite database"),
    Bad("a pipe as the database", lambda e: ["case", "list"], setup=_fifo_database, says="not a regular file"),
]
WORKSPACES_NEWER = [Bad("database from a newer workbench", lambda e: ["case", "list"], setup=_newer_database, says="newer")]
WORKSPACES_DAMAGED = [
    Bad("damaged database pages", lambda e: ["gallery", "rebuild"], setup=_damaged_database, says="workbench.db"),
]


def _index_file(env: Env, name: str) -> Path:
    (build,) = (env.home / "index").glob("build-*")
    return build / name


def _damage_npy_header(env: Env) -> None:
    path = _index_file(env, "embeddings.npy")
    data = bytearray(path.read_bytes())
    broken = b"{'descr': '<f4', 'shape': (((("
    data[10 : 10 + len(broken)] = broken
    path.write_bytes(bytes(data))


def _garbage_annoy(env: Env) -> None:
    path = _index_file(env, "faces.ann")
    path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))


def _garbage_manifest(env: Env) -> None:
    (env.home / "index" / "manifest.json").write_text("{ not json")


INDEX = [
    Bad(
        "embeddings.npy with a damaged header: stats",
        lambda e: ["gallery", "stats", "--json"],
        setup=_damage_npy_header,
        expect=frozenset({0}),
        says="damaged",
    ),
    Bad(
        "embeddings.npy with a damaged header: search",
        lambda e: ["search", I("probe.png")(e), "--case", CASE, "--json"],
        setup=_damage_npy_header,
        expect=frozenset({0}),
        says="searching exactly",
    ),
    Bad(
        "Annoy file replaced by garbage",
        lambda e: ["gallery", "stats", "--verify"],
        setup=_garbage_annoy,
        expect=frozenset({0}),
        says="faces.ann",
    ),
    Bad(
        "index manifest that is not JSON",
        lambda e: ["search", I("probe.png")(e), "--case", CASE],
        setup=_garbage_manifest,
        expect=frozenset({0}),
        says="manifest",
    ),
]

GROUPS = {
    "images": IMAGES,
    "search": SEARCH,
    "search-damage": SEARCH_DAMAGE,
    "footage": FOOTAGE,
    "manifests": MANIFESTS,
    "pairs": PAIRS,
    "cases": CASES,
    "settings": SETTINGS,
    "settings-file": SETTINGS_FILE,
    "workspaces": WORKSPACES,
    "workspaces-newer": WORKSPACES_NEWER,
    "workspaces-damaged": WORKSPACES_DAMAGED,
    "index": INDEX,
}
# Groups whose cases each change the workspace first: one fresh copy per case.
ONE_COPY_PER_CASE = {"settings-file", "workspaces", "index"}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_bad_input_group(group, enrolled, inputs, tmp_path):
    problems = []
    for number, case in enumerate(GROUPS[group]):
        fresh = number == 0 or group in ONE_COPY_PER_CASE
        if fresh:
            home = _copy(enrolled, tmp_path / f"ws{number}")
            env = Env(home, inputs, tmp_path)
        problems += run_group(env, [case], group)
    assert not problems, "\n\n".join(problems)


def test_refused_replay_records_nothing_and_links_are_listed(enrolled, inputs, tmp_path):
    """Details behind two corpus kinds: a failed replay records no search; refused symbolic
    links and paths outside the manifest are listed with their reason in the report."""
    home = _copy(enrolled, tmp_path / "ws")
    _damage_recorded_probe(Env(home, inputs, tmp_path))
    status, _, err = cli(home, ["search", "--replay", "1"])
    assert status == 1 and ("cannot be read back" in err or "damaged" in err), err
    conn = sqlite3.connect(home / "workbench.db")
    assert conn.execute("SELECT COUNT(*) FROM searches").fetchone()[0] == 1
    conn.close()
    status, out, _ = cli(home, ["gallery", "enrol", str(inputs / "custody-links"), "--json"])
    report = Path(json.loads(out)["report"]).read_text()
    assert status == 0 and json.loads(out)["enrolled"] == 0
    assert report.count("symbolic link, not followed") == 3 and "passwd.png" in report and "LINKED-2" in report
    status, out, _ = cli(home, ["gallery", "enrol", "--manifest", str(inputs / "manifests" / "outside.csv"), "--json"])
    report = Path(json.loads(out)["report"]).read_text()
    assert json.loads(out)["enrolled"] == 0 and report.count("outside the manifest's folder") == 3


# ---------------------------------------------------------------------------------------------
# A sample as real processes


def _without_file_permission_override() -> None:
    """In the child: drop root's right to ignore file permissions (so an unreadable folder is
    unreadable); runs only as root."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: gone after exec
        libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP


def run_process(home: Path, *argv, root_without_override: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_USER"}  # act as the login: nothing extra is audited
    preexec = _without_file_permission_override if (root_without_override and os.geteuid() == 0) else None
    return subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(home), *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=preexec,
    )


def test_a_sample_as_real_processes(enrolled, inputs, tmp_path):
    home = _copy(enrolled, tmp_path / "ws")
    unreadable = tmp_path / "unreadable"
    shutil.copytree(enrolled, unreadable, symlinks=True)
    unreadable.chmod(0o000)
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    conn = sqlite3.connect(foreign / "workbench.db")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    foreign_bytes = (foreign / "workbench.db").read_bytes()
    sample = [
        ("corrupt image", home, ["faces", inputs / "corrupt.jpg", "--json"], 1, False),
        ("fps 0", home, ["footage", "extract", inputs / "clip.mp4", "--fps", "0"], 1, False),
        ("bad manifest header", home, ["gallery", "enrol", "--manifest", inputs / "manifests" / "missing-column.csv"], 1, False),
        ("home is a file", inputs / "a-file", ["case", "list"], 1, False),
        ("foreign SQLite file", foreign, ["case", "list"], 1, False),
        ("unreadable workspace folder", unreadable, ["case", "list"], 1, True),
        ("usage error", home, ["search", "--mode", "guess"], 2, False),
    ]
    problems = []
    try:
        for kind, where, argv, expected, drop in sample:
            before = snapshot(where) if kind != "unreadable workspace folder" else None
            proc = run_process(where, *argv, root_without_override=drop)
            unchanged = before is None or snapshot(where) == before
            TALLY.append({"group": "process", "kind": kind, "status": proc.returncode, "unchanged": unchanged})
            if proc.returncode != expected or "Traceback" in proc.stderr:
                problems.append(f"{kind}: status {proc.returncode} (expected {expected}); stderr: {proc.stderr[-800:]}")
            if not unchanged:
                problems.append(f"{kind}: the workspace changed")
    finally:
        unreadable.chmod(0o700)
    assert (foreign / "workbench.db").read_bytes() == foreign_bytes
    assert sorted(p.name for p in foreign.iterdir()) == ["workbench.db"]  # no WAL or SHM beside a foreign file
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# The tally


def tally_table() -> str:
    kinds = {}
    for row in TALLY:
        kinds.setdefault((row["group"], row["kind"]), row)
    by_status = {s: sum(1 for r in kinds.values() if r["status"] == s) for s in (0, 1, 2)}
    lines = [f"{'group':<20} {'kind':<48} {'exit':>4}  workspace", "-" * 90]
    for (group, kind), row in sorted(kinds.items()):
        lines.append(f"{group:<20} {kind[:48]:<48} {row['status']:>4}  {'unchanged' if row['unchanged'] else 'changed'}")
    lines.append("-" * 90)
    lines.append(
        f"{len(kinds)} kinds of bad input: exit 0 (handled) {by_status[0]}, exit 1 (refused, clear error) {by_status[1]}, "
        f"exit 2 (usage) {by_status[2]}; tracebacks 0"
    )
    return "\n".join(lines)


def test_zz_tally_of_the_corpus():
    """Runs last in this module: at least 60 kinds were tried; prints the table (``pytest -s``)."""
    if len({(r["group"], r["kind"]) for r in TALLY}) < 60:
        pytest.skip("run the whole module to get the tally")
    table = tally_table()
    sys.stdout.write("\n" + table + "\n")
    assert len({(r["group"], r["kind"]) for r in TALLY}) >= 60
