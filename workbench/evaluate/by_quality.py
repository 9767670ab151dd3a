"""FNMR and FMR as comparisons whose probes are below a quality score (or an inter-ocular
distance) are excluded; a pair's quality is the lower of its two faces'."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .evidence import false_match_reason, genuine_reason, joined_reason

#: quality score cut-offs shown by default (the engine's score in [0, 1]).
QUALITY_CUTOFFS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
#: inter-ocular distance cut-offs (px) shown by default.
IOD_CUTOFFS = (0.0, 15.0, 20.0, 30.0, 40.0, 60.0, 90.0)


def quality_table(frame: pd.DataFrame, threshold: float, *, by: str = "quality", cutoffs: Sequence[float] | None = None) -> pd.DataFrame:
    """FNMR and FMR at ``threshold`` as comparisons whose lower face quality (``by="quality"``)
    or eye distance (``by="iod"``, px) is below each cut-off are excluded.

    Returns columns ``minimum`` (the cut-off), ``by``, ``kept`` (comparisons kept),
    ``excluded_share`` (share of comparisons excluded), ``genuine``, ``impostor``, ``fnmr``,
    ``fmr``, ``reason``. Comparisons whose quality is not known are kept only at cut-off 0.
    """
    if by not in ("quality", "iod"):
        raise ValueError(f"by must be 'quality' or 'iod', got {by!r}")
    cutoffs = (QUALITY_CUTOFFS if by == "quality" else IOD_CUTOFFS) if cutoffs is None else cutoffs
    values = frame[by].to_numpy(np.float64)
    mated, scores = frame["mated"].to_numpy(bool), frame["score"].to_numpy(np.float64)
    rows = []
    for minimum in cutoffs:
        keep = np.ones(len(frame), bool) if minimum <= 0 else (values >= minimum)
        g, i = mated & keep, ~mated & keep
        fm, fnm = int(np.sum(scores[i] >= threshold)), int(np.sum(scores[g] < threshold))
        fnmr_reason = genuine_reason(int(g.sum()))
        fmr_reason = false_match_reason(fm, int(i.sum()))
        rows.append(
            {
                "minimum": float(minimum),
                "by": by,
                "kept": int(keep.sum()),
                "excluded_share": float(1 - keep.mean()) if len(keep) else np.nan,
                "genuine": int(g.sum()),
                "impostor": int(i.sum()),
                "fnmr": None if fnmr_reason else fnm / int(g.sum()),
                "fmr": None if fmr_reason else fm / int(i.sum()),
                "reason": joined_reason(("FNMR", fnmr_reason), ("FMR", fmr_reason)) or None,
            }
        )
    return pd.DataFrame(rows)
