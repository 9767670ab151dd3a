"""Cases: the investigation record, from an open case to a disclosure report.

Modules:

* ``store.py``: :class:`CaseStore`: cases (reference, offence, stated purpose, officer,
  status), recorded searches (probes with their evidence, settings, the candidate lists exactly
  as shown) and two-person review (first verdict, second confirm or disagree; changes
  supersede, never edit). Every change writes its audit entry in the same transaction.
* ``investigate.py``: the investigation flow: probes -> a search inside an open case,
  recorded -> replay of a recorded search against the gallery as it is now.
* ``report_data.py``: gathers one case (searches, decisions, custody thumbnails, the verified
  audit trail) into the report's data and exports it, audited with the file's sha256.
* ``report.py``: renders that data as PDF (the one module that imports ReportLab) or HTML.

The audit log itself (:mod:`workbench.audit`) sits beside the database layer because the
gallery and settings write it too.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Agreement": "store",
        "Case": "store",
        "CaseStatus": "store",
        "CaseStore": "store",
        "Decision": "store",
        "ReviewStatus": "store",
        "SearchRun": "store",
        "Verdict": "store",
        "export_report": "report_data",
        "replay": "investigate",
        "run_search": "investigate",
    },
)
