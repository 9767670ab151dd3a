"""The dashboards: ipywidgets components over :class:`~workbench.workspace.Workspace`, the apps
that compose them, and the Voila launcher. Nothing outside this package imports ipywidgets.

Apps (each ``App(ws)`` or ``App.from_environment()``, displayed as the last expression of a cell):

* :class:`AnalystApp` (``analyst.py``): case, footage, face tracks, manual boxes, search, first verdicts;
* :class:`ReviewerApp` (``reviewer.py``): the second-review queue, side by side, reports to download;
* :class:`GalleryAdminApp` (``admin.py``): enrolment, gallery statistics, index, removals, audit;
* :class:`TuningApp` (``tuning.py``): evaluation on a labelled set with score, ROC, DET and CMC plots.

Modules underneath, one job each: ``feedback.py`` (status line, callback guard, background task
runner with progress and Cancel), ``pictures.py`` (small JPEGs), ``layout.py`` and
``dashboard.py`` (cards, header, style), ``tables.py``, ``download.py``, and one module per
panel (``case_panel``, ``footage_panel``, ``tracks``, ``manual_box``, ``search_panel``,
``verdicts``, ``case_record``, ``review_queue``, ``compare``, ``report_export``,
``enrol_panel``, ``gallery_panel``, ``audit_panel``). ``session.py`` says which workspace and
user a dashboard opens; ``serve.py`` starts Voila (standard library only) through
``voila_main.py`` (Voila's own entry point, minus a deprecation notice meant for developers).
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "AnalystApp": "analyst",
        "GalleryAdminApp": "admin",
        "ReviewerApp": "reviewer",
        "TuningApp": "tuning",
        "open_workspace": "session",
    },
)
