"""Content hashes of the rows an audit entry covers, and the check of the rows as they are now.

Every change of a case, a recorded search (its row, its probes, its candidate list), a review
decision, a custody subject, image or face puts the SHA-256 of the rows as written into its audit
entry's details (``details["content"] = {kind: {id: sha256}}``); a removal names what it removed
(``details["removed"] = {kind: [id, ...]}``). :func:`check` recomputes the hashes from the rows as
they are now and names every row that differs from its latest entry, has no entry, or is gone
without a removal.

The serialisation is canonical JSON of the columns listed in :data:`KINDS`, in that order
(blobs, such as embeddings or the crop shown, as their SHA-256: the hash covers them, the log
holds nothing biometric). The list is fixed by schema: a migration that adds a column to one of
these tables adds it here under a new :data:`SCHEME`, so rows hashed before keep verifying.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

SCHEME = "workbench-rows/1"
#: the action of an entry that holds rows as they were when their coverage started.
SEAL_ACTION = "audit.seal"


@dataclass(frozen=True)
class Kind:
    table: str
    id_column: str
    columns: tuple[str, ...]
    order: tuple[str, ...] = ()  # several rows per id, in this order
    label: str = "{}"
    text_id: bool = False


_PROBE_COLUMNS = (
    "search_id probe_id position source_path source_sha256 frame_index timestamp_s start_s end_s bbox_json quality n_faces "
    "crop_png embedding_dim embeddings manual"
)

#: what an audit entry can cover, by kind; ids are recorded as text.
KINDS: dict[str, Kind] = {
    "case": Kind(
        "cases",
        "reference",
        tuple("reference offence purpose officer status created_utc created_by updated_utc".split()),
        (),
        "case {}",
        True,
    ),
    "search": Kind(
        "searches",
        "search_id",
        tuple("search_id case_ref time_utc user pack_id gallery_version top threshold mode method replay_of".split()),
        (),
        "search {}",
    ),
    "probes": Kind("search_probes", "search_id", tuple(_PROBE_COLUMNS.split()), ("position",), "the probes of search {}"),
    "candidates": Kind(
        "search_candidates",
        "search_id",
        tuple("search_id probe_id rank subject_id score image_id face_id above_threshold per_probe_json".split()),
        ("probe_id", "rank"),
        "the candidate list of search {}",
    ),
    "decision": Kind(
        "decisions",
        "decision_id",
        tuple("decision_id search_id probe_id subject_id stage reviewer verdict agreement reason time_utc supersedes reviews".split()),
        (),
        "decision {}",
    ),
    "subject": Kind(
        "subjects", "subject_id", tuple("subject_id name dob sex ethnicity custody_date source created_utc".split()), (), "subject {}", True
    ),
    "image": Kind(
        "custody_images",
        "image_id",
        tuple(
            "image_id subject_id path sha256 size_bytes width_px height_px capture_date faces_found pack_id "
            "enrolled_utc enrolled_by".split()
        ),
        (),
        "custody image {}",
    ),
    "face": Kind(
        "faces",
        "face_id",
        tuple("face_id image_id subject_id x1 y1 x2 y2 landmarks detector_score quality quality_json embedding pack_id".split()),
        (),
        "face {}",
    ),
}

#: Kinds covered from a later schema on: what an operating threshold, a calibration, the
#: threshold record and false match rates a search showed, and who holds which role rest on.
#: Their coverage starts at the entry that names them in ``details["seals"]``: the first entry of
#: a new log, or in an older log an ``audit.seal`` entry holding their rows as they were then. A
#: log without one (written before they were covered) is not checked for them. Kinds are only
#: ever added, never changed, so older hashes keep verifying.
LATER_KINDS: dict[str, Kind] = {
    "search_record": Kind(
        "searches", "search_id", ("search_id", "threshold_version", "calibration_id", "notes_json"), (), "the threshold record of search {}"
    ),
    "candidate_fmr": Kind(
        "search_candidates",
        "search_id",
        ("search_id", "probe_id", "rank", "fmr_at_score"),
        ("probe_id", "rank"),
        "the false match rates shown in search {}",
    ),
    "threshold": Kind(
        "threshold_versions",
        "version",
        tuple("version pack_id threshold reason set_by time_utc previous evaluation_path evaluation_sha256 evaluation_json".split()),
        (),
        "threshold version {}",
    ),
    "calibration": Kind(
        "score_calibrations",
        "calibration_id",
        tuple(
            "calibration_id pack_id time_utc user faces subjects pairs exhaustive max_pairs seed gallery_state quantiles_json "
            "top_scores".split()
        ),
        (),
        "score calibration {}",
    ),
    "user": Kind("users", "name", ("name", "roles", "active", "added_utc", "added_by"), (), "user {}", True),
    "fact": Kind("workspace_facts", "key", ("key", "value"), (), "workspace setting {}", True),
}
KINDS.update(LATER_KINDS)

#: kinds whose rows hang off a search: every search has one (perhaps empty) set of them.
_PER_SEARCH = ("probes", "candidates", "candidate_fmr")
#: covering a kind covers these too (the columns a later schema added to the same rows).
COMPANIONS = {"search": ("search_record",), "candidates": ("candidate_fmr",)}


def with_companions(covers: dict[str, Iterable]) -> dict[str, list]:
    """``covers`` ({kind: ids}) with the companion kinds of each kind covering the same ids."""
    out = {name: list(ids) for name, ids in covers.items()}
    for name, ids in list(out.items()):
        for companion in COMPANIONS.get(name, ()):
            out.setdefault(companion, ids)
    return out


def later_seal_details(conn: sqlite3.Connection, reason: str) -> dict:
    """Details of the entry that starts coverage of :data:`LATER_KINDS`: their rows as they are now."""
    content = {name: found for name in LATER_KINDS if (found := dict(current(conn, name)))}
    return {"reason": reason, "seals": sorted(LATER_KINDS), "content": content}


def label(kind: str, row_id: str) -> str:
    return KINDS[kind].label.format(row_id) if kind in KINDS else f"{kind} {row_id}"


def _value(value):
    if isinstance(value, bytes | bytearray | memoryview):
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
    return value


def row_hash(kind: str, row_id: str, rows: Iterable[Iterable]) -> str:
    """SHA-256 of the canonical serialisation of one id's rows (columns of :data:`KINDS`)."""
    payload = [SCHEME, kind, str(row_id), [[_value(v) for v in row] for row in rows]]
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _select(kind: Kind, where: str = "") -> str:
    order = ", ".join((kind.id_column, *kind.order))
    return f"SELECT {', '.join(kind.columns)} FROM {kind.table}{where} ORDER BY {order}"


def _key(kind: Kind, row_id):
    return str(row_id) if kind.text_id else int(row_id)


def hashes(conn: sqlite3.Connection, covers: dict[str, Iterable]) -> dict[str, dict[str, str]]:
    """{kind: {id: sha256}} of the rows named by ``covers`` ({kind: ids}), as they are now."""
    out: dict[str, dict[str, str]] = {}
    for name, ids in with_companions(covers).items():
        kind = KINDS[name]
        found = out.setdefault(name, {})
        if name in _PER_SEARCH:  # several rows per id, perhaps none
            sql = _select(kind, f" WHERE {kind.id_column} = ?")
            for row_id in ids:
                found[str(row_id)] = row_hash(name, str(row_id), [tuple(r) for r in conn.execute(sql, (_key(kind, row_id),))])
            continue
        keys = list(dict.fromkeys(_key(kind, i) for i in ids))
        at = kind.columns.index(kind.id_column)
        for start in range(0, len(keys), 900):  # one query per 900 rows, not one per row
            chunk = keys[start : start + 900]
            for r in conn.execute(_select(kind, f" WHERE {kind.id_column} IN ({','.join('?' * len(chunk))})"), chunk):
                found[str(r[at])] = row_hash(name, str(r[at]), [tuple(r)])
        missing = [str(k) for k in keys if str(k) not in found]
        if missing:
            raise ValueError(f"{label(name, missing[0])} does not exist: an audit entry cannot cover it")
    return {name: found for name, found in out.items() if found}


def _grouped(conn: sqlite3.Connection, name: str) -> Iterator[tuple[str, str]]:
    kind = KINDS[name]
    cursor = conn.execute(_select(kind))
    current, rows = None, []
    while batch := cursor.fetchmany(2000):
        for r in batch:
            row_id = r[kind.columns.index(kind.id_column)]
            if rows and row_id != current:
                yield str(current), row_hash(name, str(current), rows)
                rows = []
            current = row_id
            rows.append(tuple(r))
    if rows:
        yield str(current), row_hash(name, str(current), rows)


def current(conn: sqlite3.Connection, name: str) -> Iterator[tuple[str, str]]:
    """(id, sha256) of every row (group) of one kind as it is now."""
    if name not in _PER_SEARCH:
        yield from _grouped(conn, name)
        return
    found = dict(_grouped(conn, name))
    for (search_id,) in conn.execute("SELECT search_id FROM searches ORDER BY search_id"):
        key = str(search_id)
        yield key, found.pop(key, None) or row_hash(name, key, [])
    yield from found.items()  # rows of a search that no longer exists


def everything(conn: sqlite3.Connection) -> dict[str, dict[str, str]]:
    """{kind: {id: sha256}} of every covered row: the seal of a log written before content hashing
    (it names :data:`LATER_KINDS` too, so it also starts their coverage)."""
    return {name: found for name in KINDS if (found := dict(current(conn, name)))}


def of_images(conn: sqlite3.Connection, image_ids: Iterable[int]) -> dict[str, list]:
    """What storing these custody images wrote: the images, their faces and their subjects."""
    ids = sorted({int(i) for i in image_ids})
    covers: dict[str, list] = {"subject": [], "image": ids, "face": []}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        covers["face"] += [r[0] for r in conn.execute(f"SELECT face_id FROM faces WHERE image_id IN ({marks})", chunk)]
        sql = f"SELECT DISTINCT subject_id FROM custody_images WHERE image_id IN ({marks})"
        covers["subject"] += [r[0] for r in conn.execute(sql, chunk)]
    covers["subject"] = sorted(set(covers["subject"]))
    return {k: v for k, v in covers.items() if v}


def of_subject(conn: sqlite3.Connection, subject_id: str) -> dict[str, list]:
    """What removing a subject deletes: the subject, its images and its faces (ids only)."""
    return {
        "subject": [subject_id],
        "image": [r[0] for r in conn.execute("SELECT image_id FROM custody_images WHERE subject_id = ? ORDER BY image_id", (subject_id,))],
        "face": [r[0] for r in conn.execute("SELECT face_id FROM faces WHERE subject_id = ? ORDER BY face_id", (subject_id,))],
    }


# -- the check ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowsCheck:
    problems: tuple[tuple[int | None, str], ...]  # (the entry concerned, what is wrong)
    rows_checked: int
    covered_entries: int  # entries that carry content hashes


def check(conn: sqlite3.Connection, entries: Iterable[tuple[int, str, dict]]) -> RowsCheck:
    """Compare every covered row as it is now with its latest audit entry.

    Args:
        entries: (seq, action, details) of the log, in order.
    """
    latest: dict[tuple[str, str], tuple[str | None, int, str]] = {}
    covered = 0
    sealed: set[str] = set()  # later kinds whose coverage has started
    for seq, action, details in entries:
        content, removed = details.get("content"), details.get("removed")
        if isinstance(details.get("seals"), list):
            sealed.update(k for k in details["seals"] if k in LATER_KINDS)
        if isinstance(content, dict):
            covered += 1
            for name, found in content.items():
                for row_id, digest in (found or {}).items():
                    latest[(name, str(row_id))] = (digest, seq, action)
        if isinstance(removed, dict):
            for name, ids in removed.items():
                for row_id in ids or ():
                    latest[(name, str(row_id))] = (None, seq, action)
    problems: list[tuple[int | None, str]] = []
    checked = 0
    checked_kinds = [name for name in KINDS if name not in LATER_KINDS or name in sealed]
    for name in checked_kinds:
        try:
            rows = list(current(conn, name))
        except sqlite3.OperationalError:  # a database older than the table
            continue
        for row_id, digest in rows:
            checked += 1
            what = label(name, row_id)
            recorded = latest.pop((name, row_id), None)
            if recorded is None:
                problems.append((None, f"{what} has no audit entry (written outside the workbench)"))
            elif recorded[0] is None:
                problems.append((recorded[1], f"{what} exists, but audit entry {recorded[1]} ({recorded[2]}) removed it"))
            elif recorded[0] != digest:
                problems.append((recorded[1], f"{what} changed since audit entry {recorded[1]} ({recorded[2]})"))
    for (name, row_id), (digest, seq, action) in sorted(latest.items(), key=lambda item: item[1][1]):
        if digest is not None and name in checked_kinds:
            problems.append((seq, f"{label(name, row_id)} is gone, but no entry removed it (written at audit entry {seq}, {action})"))
    return RowsCheck(tuple(problems), checked, covered)
