"""Threshold tuning for technical staff: labelled sets, an evaluation run, plots and rates.

What it is for: choosing an operating threshold (cosine) for a model pack means knowing, on
labelled faces like the force's own, how often different people score above it (false match
rate, FMR) and how often the same person scores below it (false non-match rate, FNMR). The
figures come from :mod:`workbench.evaluate` (verification on pairs, identification on a gallery
and probes); this module only builds labelled sets, runs those functions in the background and
shows their results:

* :func:`package_set`: a tiny labelled set made from images installed packages ship (the six
  people of InsightFace's ``t1.jpg``, with flips, blur, scale and light changes). It shows the
  pipeline runs end to end. It is **package images, not a benchmark**: never quote its figures.
* :func:`shared_set`: identities of ``glint24_aligned`` from the shared evaluation data (already
  aligned 112x112 crops, so evaluated with ``aligned=True``), when that data is present.
* :class:`TuningApp`: fields for a pairs CSV and images folder and/or gallery and probes
  folders and a groups CSV (identity plus metadata columns), "Run evaluation" (progress,
  Cancel), the figures with bootstrap intervals (identities resampled), plots (score
  distributions of mated and non-mated comparisons, ROC, DET with the operating point, CMC,
  per-group bars), the rates and the per-group table at a threshold chosen on a slider, and
  "Record as operating threshold" with a reason: a new threshold version for the pack
  (:meth:`workbench.workspace.Workspace.set_threshold`), with the evaluation saved as JSON
  beside it and its sha256 kept. Every search then records that version.

CSS classes (stable, for browser tests): ``wb-tuning`` (the app); its sections
``wb-tuning-inputs``, ``wb-tuning-figures``, ``wb-tuning-rates``, ``wb-tuning-plot-section``;
``wb-tuning-dataset`` (what the labelled set is), ``wb-tuning-note`` (what its figures may be
used for), ``wb-tuning-pairs``, ``wb-tuning-images``, ``wb-tuning-gallery``, ``wb-tuning-probes``
(the path fields), ``wb-tuning-groups`` (the groups CSV field), ``wb-tuning-aligned`` (the
checkbox), ``wb-tuning-run``, ``wb-tuning-summary`` (the figures, a ``wb-tuning-figures-table``),
``wb-tuning-intervals`` (a ``wb-tuning-intervals-table``), ``wb-tuning-plots`` (the pictures, each
also ``wb-plot-<name>``), ``wb-tuning-threshold`` (the slider), ``wb-tuning-at-threshold`` (the
rates), ``wb-tuning-group-table`` (the per-group table at the slider, a ``wb-tuning-groups-table``),
``wb-tuning-record`` (its section), ``wb-tuning-reason``, ``wb-tuning-record-button``,
``wb-tuning-current`` (the version in force and the last ones).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np

from .. import evaluate
from ..errors import WorkbenchError
from ..images import crop_box, load_image
from ..samples import sample_image
from ..workspace import Workspace
from .dashboard import Dashboard
from .layout import hint, section
from .tables import html_table, key_value_table, plural

PACKAGE_NOTE = (
    "Package images, not a benchmark: six people cut from one photo (InsightFace's t1.jpg) with flips, blur, "
    "scale and light changes. The figures show the pipeline runs; they say nothing about accuracy on real casework."
)
SHARED_NOTE = (
    "glint24_aligned from the shared evaluation data: celebrity faces already aligned to 112x112 (research use only). "
    "Closer to real use than the package images, but still not the force's own images."
)
GROUPS_NOTE = (
    "The package images carry no metadata about the people, and none is invented: the grouping column 'photo_half' "
    "(which half of t1.jpg the person stands in) only shows how the per-group table works."
)
#: the augmentations of :func:`package_set`: name -> what is done to the face crop.
AUGMENTATIONS = {
    "original": "as cut out",
    "flipped": "mirrored left-right",
    "blurred": "Gaussian blur, sigma 2 px",
    "small": "scaled to 45%",
    "flipped_small_blurred": "mirrored, scaled to 60%, blurred (sigma 1.2 px)",
    "dark": "darkened (gamma 1.8)",
}


@dataclass(frozen=True)
class LabelledSet:
    """A labelled set on disk, in the layouts :mod:`workbench.evaluate` reads.

    Attributes:
        name: what it is, in a few words; note: what its figures may and may not be used for.
        images_dir: one sub-folder per identity; pairs_csv: columns a, b, same (paths relative
            to ``images_dir``).
        gallery_dir, probes_dir: one sub-folder per identity each, for identification.
        aligned: the images are already aligned crops (no detection).
        groups_csv: metadata per identity (a column ``identity`` and metadata columns), or None.
    """

    name: str
    note: str
    images_dir: Path
    pairs_csv: Path
    gallery_dir: Path
    probes_dir: Path
    aligned: bool = False
    groups_csv: Path | None = None


def _augment(crop: np.ndarray) -> dict[str, np.ndarray]:
    """The :data:`AUGMENTATIONS` of one face crop (RGB uint8)."""

    def scaled(rgb, factor):
        return cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)

    flipped = np.ascontiguousarray(crop[:, ::-1])
    return {
        "original": crop,
        "flipped": flipped,
        "blurred": cv2.GaussianBlur(crop, (0, 0), 2.0),
        "small": scaled(crop, 0.45),
        "flipped_small_blurred": cv2.GaussianBlur(scaled(flipped, 0.6), (0, 0), 1.2),
        "dark": (255.0 * (crop / 255.0) ** 1.8).astype(np.uint8),
    }


def _save_png(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise WorkbenchError(f"{path}: cannot write the image")


def write_pairs_csv(images_dir: Path, out: Path, *, per_identity: int = 30, seed: int = 0) -> Path:
    """Draw balanced same/different pairs from ``images_dir`` (:func:`workbench.evaluate.make_pairs`)
    and write them as a pairs CSV (a, b, same)."""
    pairs = evaluate.make_pairs(images_dir, per_identity=per_identity, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "same"])
        writer.writerows(pairs)
    return out


def package_set(engine, folder: str | os.PathLike) -> LabelledSet:
    """Build the package-image labelled set in ``folder`` (see :data:`PACKAGE_NOTE`).

    The six people of ``t1.jpg`` (left to right: ``t1-person-1`` ... ``-6``), each in the
    :data:`AUGMENTATIONS`: all six in ``images/`` (with ``pairs.csv``), the original in
    ``gallery/`` and the five others in ``probes/``. About 40 small PNGs; a second or two.
    """
    folder = Path(folder)
    t1 = load_image(sample_image("t1"))
    people = sorted(engine.detect(t1), key=lambda f: f.bbox_xyxy[0])
    if len(people) != 6:
        raise WorkbenchError(f"expected the six people of t1.jpg, the detector found {len(people)}")
    for index, face in enumerate(people, start=1):
        identity = f"t1-person-{index}"
        for name, rgb in _augment(crop_box(t1, face.bbox_xyxy, 0.6)).items():
            _save_png(rgb, folder / "images" / identity / f"{name}.png")
            _save_png(rgb, folder / ("gallery" if name == "original" else "probes") / identity / f"{name}.png")
    pairs = write_pairs_csv(folder / "images", folder / "pairs.csv", per_identity=15)
    groups = folder / "groups.csv"
    with open(groups, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "photo_half"])
        writer.writerows([f"t1-person-{i}", "left" if i <= 3 else "right"] for i in range(1, 7))
    return LabelledSet(
        "package images (t1.jpg, augmented)", f"{PACKAGE_NOTE} {GROUPS_NOTE}", folder / "images", pairs, folder / "gallery",
        folder / "probes", groups_csv=groups,
    )  # fmt: skip


def _link(source: Path, target: Path) -> None:
    """``target`` names ``source`` (a symbolic link, so research data is never copied; a copy
    where links are not allowed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copyfile(source, target)


def shared_set(
    root: str | os.PathLike, folder: str | os.PathLike, *, per_identity: int | None = 10, gallery_per_identity: int = 2
) -> LabelledSet:
    """A labelled set from ``glint24_aligned`` (``root``: one sub-folder of aligned crops per identity).

    Takes the first ``per_identity`` images of each identity (None: all of them; 10 keeps a run
    to about a quarter of a minute on 2 cores), the first ``gallery_per_identity`` of those as
    the gallery and the rest as probes; pairs are drawn from the same images. The folders in
    ``folder`` hold links to the files, not copies.
    """
    root, folder = Path(root), Path(folder)
    items = evaluate.labelled_images(root)
    by_identity: dict[str, list[Path]] = {}
    for identity, path in items:
        by_identity.setdefault(identity, []).append(path)
    if per_identity is not None and per_identity <= gallery_per_identity:
        raise WorkbenchError(
            f"per_identity ({per_identity}) must be more than gallery_per_identity ({gallery_per_identity}) to leave probes"
        )
    for identity, paths in by_identity.items():
        chosen = paths[:per_identity] if per_identity else paths
        for i, path in enumerate(chosen):
            _link(path, folder / "images" / identity / path.name)
            _link(path, folder / ("gallery" if i < gallery_per_identity else "probes") / identity / path.name)
    pairs = write_pairs_csv(folder / "images", folder / "pairs.csv", per_identity=30)
    name = f"glint24_aligned ({len(by_identity)} identities, {per_identity or 'all'} images each)"
    metadata = root / "metadata.csv"
    return LabelledSet(
        name, SHARED_NOTE, folder / "images", pairs, folder / "gallery", folder / "probes", aligned=True,
        groups_csv=metadata if metadata.is_file() else None,
    )  # fmt: skip


def shared_data_dir() -> Path | None:
    """The shared evaluation data: ``$WORKBENCH_SHARED_DATA``, else ``../shared/data`` seen from
    the project root (tried from the current folder and its parent, since notebooks run in
    ``notebooks/``); None when absent."""
    env = os.environ.get("WORKBENCH_SHARED_DATA", "").strip()
    candidates = [Path(env)] if env else [Path.cwd().parent / "shared" / "data", Path.cwd().parent.parent / "shared" / "data"]
    return next((p for p in candidates if p.is_dir()), None)


def choose_set(dataset: str, engine, folder: str | os.PathLike, *, per_identity: int | None = 10) -> LabelledSet:
    """The labelled set a notebook's parameter names: ``"package"``, ``"shared"`` (glint24_aligned;
    an error when absent) or ``"auto"`` (shared when present, else package)."""
    if dataset not in ("package", "shared", "auto"):
        raise WorkbenchError(f"dataset must be 'package', 'shared' or 'auto', got {dataset!r}")
    shared = shared_data_dir()
    glint = shared / "faces" / "glint24_aligned" if shared else None
    if dataset == "shared" and not (glint and glint.is_dir()):
        raise WorkbenchError("the shared data's faces/glint24_aligned was not found: set WORKBENCH_SHARED_DATA, or use 'package'")
    if dataset != "package" and glint and glint.is_dir():
        return shared_set(glint, folder, per_identity=per_identity)
    return package_set(engine, folder)


def figure_png(fig, *, dpi: int = 96) -> bytes:
    """A matplotlib figure as PNG bytes (a few tens of KB at this size)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class EvaluationStopped(WorkbenchError):
    """Raised from the progress callback when the person clicks Cancel."""


def operating_threshold(ws: Workspace) -> float | None:
    """The threshold searches use now (cosine): the pack's set version, else the workspace
    setting, else the pack's default (:meth:`Workspace.operating_point`)."""
    return ws.operating_point().threshold


def operating_label(ws: Workspace) -> str:
    """Where the threshold searches use comes from, for a plot legend."""
    point = ws.operating_point()
    return f"operating threshold ({point.source})"


def summary_rows(result: dict) -> list[tuple[str, object]]:
    """The figures of one run as (label, value) rows people can read."""
    rows: list[tuple[str, object]] = []
    v, i = result.get("verification"), result.get("identification")
    if v:
        rows += [
            ("Pairs compared (same person / different)", f"{v['pairs']} ({v['n_mated']} / {v['n_nonmated']})"),
            ("Images that failed to enrol", f"{v['failed_to_enrol']} of {v['images']}"),
            ("AUC", f"{v['auc']:.4f}"),
            (
                "Equal error rate (threshold)",
                f"{v['eer']:.2%} ({v['eer_threshold']:.3f})" if v["eer_threshold"] is not None else f"{v['eer']:.2%}",
            ),
            (
                "Best accuracy on this data (threshold; optimistic)",
                f"{v['accuracy']:.2%} ({v['best_threshold']:.3f})" if v["best_threshold"] is not None else f"{v['accuracy']:.2%}",
            ),
        ]
        for key in v["tar_at_fmr"]:
            t = v["threshold_at_fmr"][key]
            rows.append(
                (f"True match rate at FMR {key} (threshold)", f"{v['tar_at_fmr'][key]:.2%}" + (f" ({t:.3f})" if t is not None else ""))
            )
    if i:
        failed = i["failed_to_enrol"]
        rows += [
            (
                "Gallery identities / probes",
                f"{i['gallery_identities']} / {i['probes']} (failed to enrol: {failed['gallery']} gallery, {failed['probes']} probes)",
            ),
            ("Rank-1 / rank-10 identification rate", f"{i['rank1']:.2%} / {i['rank10']:.2%}"),
        ]
        for key, fnir in i["fnir_at_fpir"].items():
            t = i["threshold_at_fpir"][key]
            rows.append((f"Miss rate (FNIR) at FPIR {key} (threshold)", f"{fnir:.2%}" + (f" ({t:.3f})" if t is not None else "")))
    return rows


def make_figures(result: dict, *, operating: float | None = None, label: str = "operating threshold", groups=None) -> dict:
    """The plots of one run: ``distributions``, ``roc``, ``det`` (with the operating point),
    ``groups`` (per-group bars at the operating threshold, when ``groups`` is a metadata frame)
    for verification, and ``identification_scores``, ``cmc`` for identification, as matplotlib
    figures."""
    figures = {}
    v, i = result.get("verification"), result.get("identification")
    if v:
        marks = {"operating threshold": operating, "EER": v["eer_threshold"], "FMR 1e-3": v["threshold_at_fmr"].get("1e-3")}
        figures["distributions"] = evaluate.plot_score_distributions(
            v["scores"], v["labels"], thresholds=marks, title="Verification: pair scores"
        )
        figures["roc"] = evaluate.plot_roc(v["scores"], v["labels"])
        figures["det"] = evaluate.plot_det(v["scores"], v["labels"], operating={label: operating})
        if groups is not None and operating is not None:
            table = evaluate.group_table(evaluate.pairs_frame(v), groups, operating)
            figures["groups"] = evaluate.plot_group_rates(table, column=str(groups.columns[0]))
    if i:
        mates, _, nonmated_top = evaluate.identification_score_sets(i["scores"], i["probe_labels"], i["gallery_labels"])
        figures["identification_scores"] = evaluate.plot_score_distributions(
            mates + nonmated_top, [1] * len(mates) + [0] * len(nonmated_top),
            thresholds={"operating threshold": operating, "FPIR 0.01": i["threshold_at_fpir"].get("0.01")},
            title="Identification: mate score and best non-mate score",
            mated_label="mate's score", nonmated_label="best non-mated score",
        )  # fmt: skip
        figures["cmc"] = evaluate.plot_cmc(i["cmc"])
    return figures


class TuningApp(Dashboard):
    """Run the evaluation on a labelled set; show figures, plots, rates and the per-group table at
    a threshold; record a threshold as the pack's operating threshold with a reason.

    Attributes:
        ws, status, runner, header, widget: see :class:`~workbench.ui.dashboard.Dashboard`.
        dataset: HTML saying what the labelled set is and what its figures may be used for.
        pairs_csv, images_dir, gallery_dir, probes_dir: Text fields (paths on the server; give
            a pairs CSV with its images folder, a gallery with its probes folder, or both).
        groups_csv: Text field, metadata per identity (a column ``identity`` and metadata
            columns); blank: no per-group figures.
        aligned: Checkbox, the images are already aligned 112x112 crops.
        bootstrap: replicates for the confidence intervals (identities resampled).
        run_button: starts the run (through ``runner``; Cancel stops it).
        summary: HTML table of the figures; intervals: HTML table of the intervals;
        plots: box of PNG pictures; pictures: name -> Image.
        threshold: FloatSlider; at_threshold: HTML with the rates at its value; group_table:
            HTML of the per-group table at its value.
        reason, record_button, current: the reason to record, "Record as operating threshold",
            and HTML of the version in force and the last versions.
        result: ``{"verification": dict | None, "identification": dict | None}`` of the last
            run (the :mod:`workbench.evaluate` dicts, with scores), or None.
        reports: the :func:`workbench.evaluate.verification_report` /
            ``identification_report`` of the last run at the operating threshold.
        figures: name -> matplotlib Figure of the last run.
        recorded: the last :class:`~workbench.thresholds.ThresholdVersion` recorded here, or None.
    """

    title = "Threshold tuning"
    purpose = (
        "For technical staff: measure a model pack on labelled faces, see what a threshold means in error rates and for whom, "
        "and record the operating threshold with the evidence."
    )
    css_class = "wb-tuning"

    def __init__(self, ws: Workspace, labelled: LabelledSet | None = None, *, bootstrap: int = 200):
        super().__init__(ws)
        self.result: dict | None = None
        self.reports: dict = {}
        self.figures: dict = {}
        self.pictures: dict[str, widgets.Image] = {}
        self.recorded = None
        self.labelled_name: str | None = None
        self.bootstrap = int(bootstrap)
        self._groups = None
        self.dataset = widgets.HTML()
        self.dataset.add_class("wb-tuning-dataset")
        wide, style = widgets.Layout(width="720px"), {"description_width": "140px"}
        self.pairs_csv = widgets.Text(description="Pairs CSV", placeholder="pairs.csv with columns a,b,same", layout=wide, style=style)
        self.images_dir = widgets.Text(
            description="Images folder", placeholder="folder the pairs' paths are relative to", layout=wide, style=style
        )
        self.gallery_dir = widgets.Text(description="Gallery folder", placeholder="one sub-folder per identity", layout=wide, style=style)
        self.probes_dir = widgets.Text(description="Probes folder", placeholder="one sub-folder per identity", layout=wide, style=style)
        self.groups_csv = widgets.Text(
            description="Groups CSV", placeholder="optional: identity plus metadata columns (sex, age band...)", layout=wide, style=style
        )
        for field, css in (
            (self.pairs_csv, "pairs"),
            (self.images_dir, "images"),
            (self.gallery_dir, "gallery"),
            (self.probes_dir, "probes"),
            (self.groups_csv, "groups"),
        ):
            field.add_class(f"wb-tuning-{css}")
        self.aligned = widgets.Checkbox(
            description="images are already aligned face crops (no detection)", indent=False, layout=widgets.Layout(width="auto")
        )
        self.aligned.add_class("wb-tuning-aligned")
        self.run_button = widgets.Button(description="Run evaluation", button_style="primary", icon="play")
        self.run_button.add_class("wb-tuning-run")
        self.run_button.on_click(self.status.guard("evaluating")(lambda _: self.run()))
        self.summary = widgets.HTML()
        self.summary.add_class("wb-tuning-summary")
        self.intervals = widgets.HTML()
        self.intervals.add_class("wb-tuning-intervals")
        self.plots = widgets.Box(layout=widgets.Layout(flex_flow="row wrap"))
        self.plots.add_class("wb-tuning-plots")
        self.threshold = widgets.FloatSlider(
            value=0.3,
            min=-0.2,
            max=1.0,
            step=0.005,
            readout_format=".3f",
            description="Threshold",
            continuous_update=False,
            layout=widgets.Layout(width="520px"),
        )
        self.threshold.add_class("wb-tuning-threshold")
        self.at_threshold = widgets.HTML()
        self.at_threshold.add_class("wb-tuning-at-threshold")
        self.group_table = widgets.HTML()
        self.group_table.add_class("wb-tuning-group-table")
        self.threshold.observe(self.status.guard("computing the rates")(lambda _: self.show_rates()), names="value")
        self.reason = widgets.Textarea(
            description="Reason",
            placeholder="why this threshold: the evaluation, the target rate, the per-group check, who agreed it",
            layout=widgets.Layout(width="720px", height="64px"),
            style=style,
        )
        self.reason.add_class("wb-tuning-reason")
        self.record_button = widgets.Button(
            description="Record as operating threshold",
            button_style="warning",
            icon="check",
            layout=widgets.Layout(width="260px"),
            tooltip="a new threshold version for the pack (audited); every search from then on records it",
        )
        self.record_button.add_class("wb-tuning-record-button")
        self.record_button.on_click(self.status.guard("recording the threshold")(lambda _: self.record(self.reason.value)))
        self.current = widgets.HTML()
        self.current.add_class("wb-tuning-current")
        self._assemble(
            section("Labelled set", [self.dataset, self.pairs_csv, self.images_dir, self.gallery_dir, self.probes_dir, self.groups_csv,
                                     self.aligned, self.run_button], "wb-tuning-inputs"),
            section("Figures", [self.summary, self.intervals], "wb-tuning-figures"),
            section("What a threshold means here", [hint("Cosine similarity; a candidate scores at or above the threshold to count."),
                                                    self.threshold, self.at_threshold, self.group_table], "wb-tuning-rates"),
            section("Plots", [self.plots], "wb-tuning-plot-section"),
            section("Record the operating threshold", [hint("Records the slider's threshold as a new version for this model pack, "
                                                            "with your reason and this evaluation's figures (kept as a file, its "
                                                            "sha256 in the record)."),
                                                       self.reason, self.record_button, self.current], "wb-tuning-record"),
        )  # fmt: skip
        if labelled is not None:
            self.use(labelled)

    @property
    def fields(self) -> list[widgets.Widget]:
        return [self.pairs_csv, self.images_dir, self.gallery_dir, self.probes_dir, self.groups_csv, self.aligned, self.run_button]

    def use(self, labelled: LabelledSet) -> None:
        """Fill the fields with a labelled set's paths and say what it is."""
        self.pairs_csv.value, self.images_dir.value = str(labelled.pairs_csv), str(labelled.images_dir)
        self.gallery_dir.value, self.probes_dir.value = str(labelled.gallery_dir), str(labelled.probes_dir)
        self.groups_csv.value = str(labelled.groups_csv) if labelled.groups_csv else ""
        self.aligned.value = labelled.aligned
        self.labelled_name = labelled.name
        self.dataset.value = (
            f'<div style="font-weight:600">{html.escape(labelled.name)}</div>'
            '<div class="wb-tuning-note" style="background:#fff6d6;border:1px solid #e6cf7a;padding:4px 8px;margin:4px 0">'
            f"{html.escape(labelled.note)}</div>"
        )

    def run(self) -> bool:
        """Evaluate what the fields name, in the background (verification, then identification)."""
        pairs, images = self.pairs_csv.value.strip(), self.images_dir.value.strip()
        gallery, probes = self.gallery_dir.value.strip(), self.probes_dir.value.strip()
        groups_csv = self.groups_csv.value.strip()
        if bool(pairs) != bool(images) or bool(gallery) != bool(probes):
            raise WorkbenchError("give a pairs CSV with its images folder, and/or a gallery folder with its probes folder")
        if not (pairs or gallery):
            raise WorkbenchError("give a pairs CSV and images folder, or a gallery and probes folder")
        groups = evaluate.read_groups(groups_csv) if groups_csv else None  # a bad file fails here, before any work
        aligned = self.aligned.value

        def work(progress, cancel) -> tuple:
            engine = self.ws.engine  # loading the models takes a second the first time: done here, off the page's thread
            steps = [name for name, wanted in (("verification", pairs), ("identification", gallery)) if wanted]

            def part(k):
                def tick(done, total):
                    if cancel.is_set():
                        raise EvaluationStopped("evaluation stopped; nothing was measured")
                    progress(k + (done / total if total else 0), len(steps))

                return tick

            result = {"verification": None, "identification": None}
            for k, step in enumerate(steps):
                if step == "verification":
                    result[step] = evaluate.evaluate_pairs(
                        engine, Path(pairs), Path(images), aligned=aligned, progress=part(k), return_scores=True
                    )
                else:
                    result[step] = evaluate.evaluate_identification(
                        engine, Path(gallery), Path(probes), aligned=aligned, progress=part(k), return_scores=True
                    )
            point = self.ws.operating_point()
            reports = {}
            if result["verification"]:
                reports["verification"] = evaluate.verification_report(
                    result["verification"], threshold=point.threshold, threshold_source=point.source, groups=groups, n_boot=self.bootstrap
                )
            if result["identification"]:
                reports["identification"] = evaluate.identification_report(
                    result["identification"], threshold=point.threshold, threshold_source=point.source, groups=groups,
                    n_boot=self.bootstrap,
                )  # fmt: skip
            label = f"operating threshold ({point.source})"
            figures = make_figures(result, operating=point.threshold, label=label, groups=groups)
            return result, reports, groups, figures, {name: figure_png(fig) for name, fig in figures.items()}, point.threshold

        return self.runner.run("evaluating", work, self._show, disable=self.fields)

    def evaluate_now(self) -> dict:
        """:meth:`run`, wait for it, and raise its error if it failed (for notebook cells that go
        on to use ``result``); returns ``result``."""
        if not self.run():
            raise WorkbenchError("another action is still running: wait for it, then evaluate")
        self.runner.wait()
        if self.runner.last_error is not None:
            raise self.runner.last_error
        return self.result

    def _show(self, run: tuple) -> None:
        self.result, self.reports, self._groups, self.figures, pngs, operating = run
        self.summary.value = key_value_table(summary_rows(self.result), css_class="wb-tuning-figures-table")
        rows = [r for report in self.reports.values() for r in report.get("intervals", [])]
        self.intervals.value = (
            f"<b>Confidence intervals</b> ({self.bootstrap} bootstrap replicates resampling identities; a figure resting on too few "
            "comparisons is blank with the reason)"
            + html_table(rows, {"figure": "figure", "value": "value", "low": "low", "high": "high", "genuine": "same-person",
                                "impostor": "different-person", "reason": "blank because"}, css_class="wb-tuning-intervals-table")
        ) if rows else ""  # fmt: skip
        self.pictures = {}
        for name, png in pngs.items():
            image = widgets.Image(value=png, format="png", layout=widgets.Layout(width="480px", height="auto"))
            image.add_class(f"wb-plot-{name}")
            self.pictures[name] = image
        self.plots.children = list(self.pictures.values())
        if operating is not None:
            self.threshold.value = round(float(operating), 3)  # the observer writes the rates
        self.show_rates()
        self.show_current()
        self.status.success(
            f"Evaluation done: the figures, {plural(len(pngs), 'plot')} and the rates at the operating threshold are below."
        )

    def groups_at(self, threshold: float):
        """The per-group table (:func:`workbench.evaluate.group_table`, or the identification
        one when there is no verification run) of the last run at ``threshold``; None without groups."""
        if not self.result or self._groups is None:
            return None
        v, i = self.result.get("verification"), self.result.get("identification")
        if v:
            return evaluate.group_table(evaluate.pairs_frame(v), self._groups, threshold)
        return evaluate.identification_group_table(evaluate.searches_frame(i), self._groups, threshold)

    def show_rates(self) -> None:
        """Write the error rates and the per-group table at the slider's threshold (from the last run's scores)."""
        if not self.result:
            self.at_threshold.value = "<i>Run the evaluation first.</i>"
            return
        t = float(self.threshold.value)
        lines = []
        v, i = self.result.get("verification"), self.result.get("identification")
        if v:
            r = evaluate.rates_at_threshold(v["scores"], v["labels"], t)
            lines.append(
                f"Verification: <b>{r['fmr']:.2%}</b> false matches ({r['false_matches']} of {r['n_nonmated']} different-person pairs "
                f"score {t:.3f} or more); <b>{r['fnmr']:.2%}</b> false non-matches ({r['false_non_matches']} of {r['n_mated']} "
                "same-person pairs score less)."
            )
        if i:
            mates, ranks, nonmated_top = evaluate.identification_score_sets(i["scores"], i["probe_labels"], i["gallery_labels"])
            mates_arr, ranks_arr, top = np.array(mates), np.array(ranks), np.array(nonmated_top)
            n_mated = i["n_mated"]  # includes probes that failed to enrol: they are misses
            hits = int(np.sum((ranks_arr <= evaluate.CANDIDATE_LIST_LENGTH) & (mates_arr >= t)))
            false_alarms = int(np.sum(top >= t))
            lines.append(
                f"Identification: in <b>{false_alarms / max(1, len(top)):.2%}</b> of {len(top)} searches for someone not in the gallery "
                f"a candidate scores {t:.3f} or more (FPIR); <b>{1 - hits / max(1, n_mated):.2%}</b> of {n_mated} searches for someone "
                f"in the gallery miss them (FNIR, top {evaluate.CANDIDATE_LIST_LENGTH})."
            )
        self.at_threshold.value = "<br>".join(lines)
        table = self.groups_at(t)
        if table is None:
            self.group_table.value = "<i>No groups file: give one (identity plus metadata columns) to see the rates per group.</i>"
            return
        ratios = evaluate.group_ratios(table)
        rate, miss = ("FMR", "FNMR") if v else ("FPIR", "FNIR")
        self.group_table.value = (
            f"<b>Per group at {t:.3f}</b> (a rate resting on too few comparisons is blank with the reason; different-person "
            "pairs count for a group when both people are in it)"
            + html_table(evaluate.records(table), {"column": "column", "group": "group", "fmr": rate, "fnmr": miss,
                                                   "genuine": "same-person", "impostor": "different-person",
                                                   "reason": "blank because"}, css_class="wb-tuning-groups-table")
            + html_table(evaluate.records(ratios), {"column": "column", "rate": "rate", "worst_group": "worst group",
                                                    "best_group": "best group", "ratio": "worst / best", "reason": "blank because"},
                         css_class="wb-tuning-ratios-table")
        )  # fmt: skip

    def evaluation_document(self, threshold: float) -> dict:
        """The last run's figures at ``threshold``, JSON-ready: what a recorded version points to."""
        if not self.result:
            raise WorkbenchError("run the evaluation first: a threshold is recorded with the evaluation it rests on")
        v, i = self.result.get("verification"), self.result.get("identification")
        first = v or i
        document = {"kind": "tuning notebook", "pack_id": first["pack_id"], "threshold": threshold, "aligned": first["aligned"],
                    "dataset": self.labelled_name}  # fmt: skip
        drop = ("scores", "labels", "paths", "identity_a", "identity_b", "quality_a", "quality_b", "iod_a", "iod_b", "probe_labels",
                "gallery_labels", "probe_paths", "probe_qualities", "probe_iods", "failed_probe_labels", "failures")  # fmt: skip
        for name, run in (("verification", v), ("identification", i)):
            if run:
                document[name] = {k: value for k, value in run.items() if k not in drop}
        if v:
            document["at_threshold"] = evaluate.rates_at_threshold(v["scores"], v["labels"], threshold)
        table = self.groups_at(threshold)
        if table is not None:
            document["groups"] = evaluate.records(table)
            document["group_ratios"] = evaluate.records(evaluate.group_ratios(table))
        document["intervals"] = {name: report.get("intervals") for name, report in self.reports.items()}
        return document

    def record(self, reason: str, *, threshold: float | None = None):
        """Record ``threshold`` (default: the slider's) as the pack's new operating threshold
        version with ``reason``; the evaluation document is written to ``<home>/reports`` and its
        sha256 kept with the version. Returns the version."""
        reason = (reason or "").strip()
        if not reason:
            raise WorkbenchError("write why this threshold is chosen before recording it (the reason is kept with the version)")
        value = float(self.threshold.value if threshold is None else threshold)
        document = self.evaluation_document(value)
        from ..db import utc_now
        from ..fileio import atomic_write

        stamp = utc_now().replace(":", "").replace("-", "").replace("+0000", "Z")
        out = self.ws.settings.home / "reports" / f"threshold-evaluation-{stamp}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, json.dumps(document, indent=2, default=str).encode("utf-8"))
        self.recorded = self.ws.set_threshold(value, reason=reason, evaluation=out)
        self.show_current()
        self.status.success(
            f"Threshold {value:.3f} recorded as version {self.recorded.version} for pack {self.recorded.pack_short}; "
            "every search from now on records it."
        )
        return self.recorded

    def show_current(self) -> None:
        """Write the version in force and the last versions of the pack."""
        versions = self.ws.threshold_history()
        if not versions:
            self.current.value = "<i>No operating threshold has been set for this model pack yet: searches use the pack's default.</i>"
            return
        rows = [{"version": v.version, "threshold": f"{v.threshold:.3f}", "set by": v.set_by, "when (UTC)": v.time_utc,
                 "reason": v.reason, "evaluation sha256": (v.evaluation_sha256 or "")[:12]} for v in reversed(versions[-5:])]  # fmt: skip
        self.current.value = (
            f"<b>In force: version {versions[-1].version}, threshold {versions[-1].threshold:.3f}</b>"
            + html_table(rows, list(rows[0]), css_class="wb-tuning-versions")
        )
