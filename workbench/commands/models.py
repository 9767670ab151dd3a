"""``workbench models list | import | verify``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_models_list(args, ws: Workspace, out: Output) -> int:
    from ..models import list_packs

    packs = list_packs(ws.settings.models_dir)
    lines = [f"{'name':<16} {'pack id':<28} {'dim':>4}  kind"]
    lines += [
        f"{p.name:<16} {str(p.pack_id):<28} {p.embedding_dim:>4}  {p.kind}" + ("   (active)" if p.name == ws.settings.pack else "")
        for p in packs
    ]
    lines += [f"note: {p.name}: {p.licence}" for p in packs if p.kind == "insightface" and p.licence]
    out.emit({"packs": [p.as_dict() for p in packs], "active": ws.settings.pack}, lines)
    return EXIT_OK


def cmd_models_import(args, ws: Workspace, out: Output) -> int:
    from ..models import Preprocessing, import_pack

    ws.require("models.import")

    preprocessing = None
    if args.mean is not None or args.std is not None or args.channels is not None:
        preprocessing = Preprocessing(
            args.channels or "RGB", args.mean if args.mean is not None else 127.5, args.std if args.std is not None else 127.5
        )
    info = import_pack(ws.settings.models_dir, args.path, name=args.name, preprocessing=preprocessing)
    lines = [
        f"imported pack {info.name} ({info.pack_id})",
        f"  detector:   {info.detector_file} ({info.detector_kind})",
        f"  recogniser: {info.recogniser_file}, {info.embedding_dim}-d, preprocessing {info.preprocessing.as_dict()}",
    ]
    if info.licence:
        lines.append(f"  note: {info.licence}")
    out.emit({"pack": info.as_dict()}, lines)
    return EXIT_OK


def cmd_models_verify(args, ws: Workspace, out: Output) -> int:
    from ..models import list_packs, read_pack, verify_pack

    packs = [read_pack(ws.settings.models_dir, args.name)] if args.name else list_packs(ws.settings.models_dir)
    report = {p.name: verify_pack(p) for p in packs}
    lines = [f"{name}: {'ok' if not problems else 'DAMAGED'}" + "".join(f"\n  {x}" for x in problems) for name, problems in report.items()]
    ok = not any(report.values())
    out.emit({"ok": ok, "packs": {name: {"ok": not problems, "problems": problems} for name, problems in report.items()}}, lines)
    return EXIT_OK if ok else EXIT_ERROR


def register(commands, add) -> None:
    models = commands.add_parser("models", help="model packs").add_subparsers(dest="models_command", required=True, metavar="ACTION")
    add(models, "list", cmd_models_list, "list the model packs in the workspace")
    p = add(models, "import", cmd_models_import, "import an InsightFace-style pack (folder or zip)")
    p.add_argument("path", help="folder holding a detector and a recogniser ONNX, or an InsightFace zip")
    p.add_argument("--name", help="pack name (default: folder or zip name)")
    p.add_argument("--channels", choices=["RGB", "BGR"], help="recogniser channel order (default: as InsightFace infers)")
    p.add_argument("--mean", type=float, help="recogniser input mean (default: as InsightFace infers)")
    p.add_argument("--std", type=float, help="recogniser input std (default: as InsightFace infers)")
    p = add(models, "verify", cmd_models_verify, "check the sha256 of every file of every pack")
    p.add_argument("name", nargs="?", help="one pack only")
