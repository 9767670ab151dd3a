"""``workbench retention apply``: archive closed cases; purge old archived cases' biometric data.

Administrators only; the period is the setting ``retention_days`` (unset: nothing happens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import EXIT_OK

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_retention_apply(args, ws: Workspace, out: Output) -> int:
    result = ws.apply_retention()
    if result["retention_days"] is None:
        out.emit(result, "no retention period is set (setting retention_days): nothing was archived or purged")
        return EXIT_OK
    lines = [f"retention period {result['retention_days']} days"]
    lines += [f"archived case {ref}" for ref in result["archived"]]
    lines += [
        f"purged case {p['case']}: probe crops and embeddings of {p['probes_purged']} probe(s) in {p['searches']} search(es); "
        f"{p['reports_kept']} report hash(es) kept in the audit trail"
        for p in result["purged"]
    ]
    if len(lines) == 1:
        lines.append("nothing to archive or purge")
    out.emit(result, lines)
    return EXIT_OK


def register(commands, add) -> None:
    group = commands.add_parser("retention", help="retention of case data (administrators)").add_subparsers(
        dest="retention_command", required=True, metavar="ACTION"
    )
    add(group, "apply", cmd_retention_apply, "archive closed cases; purge probe crops and embeddings of old archived cases")
