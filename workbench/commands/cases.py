"""``workbench case ...``, ``workbench review ...`` and ``workbench audit ...``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import EXIT_ERROR, EXIT_OK, record_id

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


# -- case ---------------------------------------------------------------------------------------


def cmd_case_new(args, ws: Workspace, out: Output) -> int:
    case = ws.new_case(args.reference, offence=args.offence, purpose=args.purpose, officer=args.officer)
    out.emit({"case": case.as_dict()}, f"opened case {case.reference} ({case.offence}); officer in charge {case.officer}")
    return EXIT_OK


def cmd_case_list(args, ws: Workspace, out: Output) -> int:
    cases = ws.list_cases(args.status)
    lines = [f"{'reference':<20} {'status':<9} {'offence':<20} officer"] + [
        f"{c.reference:<20} {c.status.value:<9} {c.offence[:20]:<20} {c.officer}" for c in cases
    ]
    out.emit({"cases": [c.as_dict() for c in cases]}, lines if cases else "no cases")
    return EXIT_OK


def cmd_case_show(args, ws: Workspace, out: Output) -> int:
    case = ws.case(args.reference)
    searches = ws.searches(case.reference)
    reviews = {run.search_id: [r.as_dict() for r in ws.review_status(run.search_id)] for run in searches}
    counts = {status: sum(r["status"] == status for rs in reviews.values() for r in rs) for status in ("agreed", "disputed", "pending")}
    data = {
        "case": case.as_dict(),
        "review": counts,
        "searches": [{**run.as_dict(), "review": reviews[run.search_id]} for run in searches],
        "decisions": [d.as_dict() for d in ws.decisions(case.reference)],
    }
    lines = [
        f"case {case.reference} ({case.status.value}): {case.offence}",
        f"  purpose: {case.purpose}",
        f"  officer in charge: {case.officer}; opened {case.created_utc} by {case.created_by}",
        f"  review: {data['review']['agreed']} agreed, {data['review']['disputed']} disputed, {data['review']['pending']} pending",
    ]
    for run in searches:
        lines.append(
            f"  search {run.search_id} at {run.time_utc} by {run.user}: {len(run.probes)} "
            f"probe(s), top {run.top}, threshold {run.threshold}, {run.mode.value}"
        )
        for item in reviews[run.search_id]:
            first = item["first"]["verdict"] if item["first"] else "-"
            second = item["second"]["agreement"] if item["second"] else "-"
            lines.append(
                f"    {item['probe_id']:<22} {item['rank']:>3}. {item['subject_id']:<20} "
                f"{item['score']:.3f}  first: {first:<15} second: {second:<9} {item['status']}"
            )
    out.emit(data, lines)
    return EXIT_OK


def _set_status(status_name: str):
    def command(args, ws: Workspace, out: Output) -> int:
        case = ws.set_case_status(args.reference, status_name, reason=args.reason or "")
        out.emit({"case": case.as_dict()}, f"case {case.reference} is {case.status.value}")
        return EXIT_OK

    return command


# -- review -------------------------------------------------------------------------------------


def cmd_review_first(args, ws: Workspace, out: Output) -> int:
    decision = ws.first_verdict(args.search_id, args.subject_id, args.verdict, args.reason, probe_id=args.probe)
    out.emit(
        {"decision": decision.as_dict()},
        f"decision {decision.decision_id}: {decision.reviewer} recorded "
        f"'{decision.verdict.value}' for {decision.subject_id} in search {decision.search_id}",
    )
    return EXIT_OK


def cmd_review_second(args, ws: Workspace, out: Output) -> int:
    decision = ws.second_verdict(args.search_id, args.subject_id, args.agreement, args.reason, probe_id=args.probe)
    out.emit(
        {"decision": decision.as_dict()},
        f"decision {decision.decision_id}: {decision.reviewer} "
        f"{decision.agreement.value}s decision {decision.reviews} on {decision.subject_id}",
    )
    return EXIT_OK


def cmd_review_status(args, ws: Workspace, out: Output) -> int:
    reviews = ws.review_status(args.search_id)
    lines = [f"{r.probe_id:<22} {r.rank:>3}. {r.subject_id:<20} {r.score:.3f}  {r.status.value}" for r in reviews]
    out.emit({"search_id": args.search_id, "candidates": [r.as_dict() for r in reviews]}, lines or "no candidates")
    return EXIT_OK


# -- audit --------------------------------------------------------------------------------------


def cmd_audit_verify(args, ws: Workspace, out: Output) -> int:
    """Chain (keyed), covered rows and the head against the checkpoints; exit 0 only when all agree."""
    result = ws.verify_audit()
    out.emit(result.as_dict(), result.lines())
    return EXIT_OK if result.ok else EXIT_ERROR


def cmd_audit_export(args, ws: Workspace, out: Output) -> int:
    from ..audit import checkpoint_sidecar

    if args.case:
        ws.case(args.case)  # an unknown case is an error, not an empty file
    count = ws.export_audit(args.out, case_ref=args.case)
    sidecar = checkpoint_sidecar(args.out)
    out.emit(
        {"out": str(args.out), "entries": count, "checkpoint_file": str(sidecar)},
        f"wrote {count} audit entries to {args.out}; the checkpoint it was checked against, and the check, to {sidecar}",
    )
    return EXIT_OK


def register(commands, add) -> None:
    case = commands.add_parser("case", help="cases: every search runs inside one").add_subparsers(
        dest="case_command", required=True, metavar="ACTION"
    )
    p = add(case, "new", cmd_case_new, "open a case")
    p.add_argument("reference", help="crime or incident reference")
    p.add_argument("--offence", required=True, help="offence type")
    p.add_argument("--purpose", required=True, help="why searching is necessary (recorded with every search)")
    p.add_argument("--officer", help="officer in charge (default: --user)")
    p = add(case, "list", cmd_case_list, "list cases")
    p.add_argument("--status", choices=["open", "closed", "archived"])
    p = add(case, "show", cmd_case_show, "a case with its searches, candidates and review status")
    p.add_argument("reference")
    for name, status in (("close", "closed"), ("archive", "archived"), ("reopen", "open")):
        p = add(case, name, _set_status(status), f"{name} a case")
        p.add_argument("reference")
        p.add_argument("--reason", help="why (recorded in the audit log)")

    review = commands.add_parser("review", help="two-person review of candidates").add_subparsers(
        dest="review_command", required=True, metavar="ACTION"
    )
    p = add(review, "first", cmd_review_first, "record the first reviewer's verdict on a candidate")
    p.add_argument("search_id", type=record_id)
    p.add_argument("subject_id")
    p.add_argument("--verdict", required=True, choices=["possible match", "no match", "inconclusive"])
    p.add_argument("--reason", required=True)
    p.add_argument("--probe", help="probe id, when the subject is a candidate of several probes")
    p = add(review, "second", cmd_review_second, "a second, different reviewer confirms or disagrees")
    p.add_argument("search_id", type=record_id)
    p.add_argument("subject_id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--confirm", dest="agreement", action="store_const", const="confirm")
    group.add_argument("--disagree", dest="agreement", action="store_const", const="disagree")
    p.add_argument("--reason", required=True)
    p.add_argument("--probe", help="probe id, when the subject is a candidate of several probes")
    p = add(review, "status", cmd_review_status, "agreed, disputed and pending candidates of a search")
    p.add_argument("search_id", type=record_id)

    audit_parser = commands.add_parser("audit", help="the tamper-evident audit log").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    add(
        audit_parser,
        "verify",
        cmd_audit_verify,
        "check the keyed chain, the rows it covers and its head against the checkpoints; name what fails (exit 1)",
    )
    p = add(audit_parser, "export", cmd_audit_export, "write the audit entries (of one case) to CSV, with NAME.checkpoint.json beside it")
    p.add_argument("--case", help="only this case's entries")
    p.add_argument("--out", required=True)
    register_report(commands, add)


def cmd_report(args, ws: Workspace, out: Output) -> int:
    result = ws.export_report(args.reference, args.out)
    lines = f"wrote {result['out']} ({result['searches']} search(es), {result['decisions']} decision(s)); sha256 {result['sha256']}"
    if not result["audit_ok"]:
        lines += "\nWARNING: the audit chain failed verification; the report says so"
    out.emit(result, lines)
    return EXIT_OK


def register_report(commands, add) -> None:
    p = add(commands, "report", cmd_report, "export a case report for disclosure (PDF or HTML by suffix)")
    p.add_argument("reference")
    p.add_argument("--out", required=True, help="FILE.pdf or FILE.html")
