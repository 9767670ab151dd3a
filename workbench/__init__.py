"""Retrospective facial recognition workbench.

The system proposes candidates; trained people make every decision. Start from
:class:`Workspace` (one workspace folder opened for one user): cases, footage, probes,
recorded searches, two-person review, reports. The other names are the value types it hands
out and takes. Sub-packages hold the rest: :mod:`workbench.gallery`, :mod:`workbench.footage`,
:mod:`workbench.cases`, :mod:`workbench.models`, :mod:`workbench.ui`; errors live in
:mod:`workbench.errors`.

``import workbench`` loads no model and prints nothing: heavy modules load when first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_EXPORTS = {
    "Agreement": "types",
    "Candidate": "types",
    "CandidateList": "types",
    "Case": "types",
    "CaseStatus": "types",
    "Decision": "types",
    "Face": "types",
    "FaceEngine": "engine",
    "FaceQuality": "types",
    "PackId": "types",
    "Probe": "types",
    "SearchMode": "types",
    "SearchRun": "types",
    "Settings": "config",
    "Track": "types",
    "Verdict": "types",
    "WorkbenchError": "errors",
    "Workspace": "workspace",
    "evaluate_identification": "evaluate",
    "evaluate_pairs": "evaluate",
    "load_image": "images",
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
