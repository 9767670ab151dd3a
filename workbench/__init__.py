"""Retrospective facial recognition workbench.

The system proposes candidates; trained people make every decision. ``import workbench``
loads no model and prints nothing: heavy modules load when first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_EXPORTS = {
    "Agreement": "cases",
    "AuditError": "errors",
    "Candidate": "types",
    "CandidateList": "types",
    "CaseError": "errors",
    "CaseStatus": "cases",
    "CaseStore": "cases",
    "ConfigError": "errors",
    "Face": "types",
    "FaceEngine": "engine",
    "FaceQuality": "types",
    "FootageError": "errors",
    "FootageFace": "types",
    "FootageResult": "footage",
    "Gallery": "gallery",
    "GalleryError": "errors",
    "ImageError": "errors",
    "ModelPackError": "errors",
    "NoFaceError": "errors",
    "PackId": "types",
    "PackMismatchError": "errors",
    "Probe": "types",
    "ReviewError": "errors",
    "Sampling": "footage",
    "SearchMode": "types",
    "Settings": "config",
    "Track": "types",
    "TrackerConfig": "tracking",
    "Verdict": "cases",
    "WorkbenchError": "errors",
    "evaluate_identification": "evaluate",
    "evaluate_pairs": "evaluate",
    "export_report": "case_export",
    "extract": "footage",
    "extract_on_dask": "distributed",
    "identification_metrics": "evaluate",
    "load_image": "images",
    "probe_faces": "tracking",
    "replay": "investigate",
    "run_search": "investigate",
    "search_many": "search",
    "search_probes": "search",
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
