"""Retrospective facial recognition workbench.

The system proposes candidates; trained people make every decision. ``import workbench``
loads no model and prints nothing: heavy modules load when first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_EXPORTS = {
    "Agreement": "cases.store",
    "AuditError": "errors",
    "Candidate": "types",
    "CandidateList": "types",
    "CaseError": "errors",
    "CaseStatus": "cases.store",
    "CaseStore": "cases.store",
    "ConfigError": "errors",
    "Face": "types",
    "FaceEngine": "engine",
    "FaceQuality": "types",
    "FootageError": "errors",
    "FootageFace": "types",
    "FootageResult": "footage.extract",
    "Gallery": "gallery.store",
    "GalleryError": "errors",
    "ImageError": "errors",
    "ModelPackError": "errors",
    "NoFaceError": "errors",
    "PackId": "types",
    "PackMismatchError": "errors",
    "Probe": "types",
    "ReviewError": "errors",
    "Sampling": "footage.decode",
    "SearchMode": "types",
    "Settings": "config",
    "Track": "types",
    "TrackerConfig": "footage.tracking",
    "Verdict": "cases.store",
    "WorkbenchError": "errors",
    "evaluate_identification": "evaluate",
    "evaluate_pairs": "evaluate",
    "export_report": "cases.report_data",
    "extract": "footage.extract",
    "extract_on_dask": "footage.distributed",
    "identification_metrics": "evaluate",
    "load_image": "images",
    "probe_faces": "footage.tracking",
    "replay": "cases.investigate",
    "run_search": "cases.investigate",
    "search_many": "gallery.search",
    "search_probes": "gallery.search",
    "verification_metrics": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
