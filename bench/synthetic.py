"""SYNTHETIC face embeddings that score like a real pack, for benchmarks and tests of the gallery.

Not faces and not derived from any person: random vectors from a small statistical model whose
mated and non-mated cosine distributions were fitted to real embeddings. Every figure measured
on them must say "synthetic".

Why a model and not plain random unit vectors: random 128-d unit vectors score 0 +- 0.088
against each other, while real SFace embeddings of different people score 0.12 +- 0.09 (they
share a mean direction and vary in fewer effective dimensions), and mates score 0.59 +- 0.13.
How hard an index finds mates depends on exactly that geometry, so the model reproduces it:

    x = normalise(m * u0 + B z + s * B' e)        z, e ~ N(0, I_D);  s ~ LogNormal(0, spread)

* ``u0``: a fixed unit vector, the direction all faces share; ``m`` sets the non-mated mean.
* ``B``: the identity (between-person) spread, anisotropic: variance of the i-th direction of a
  random orthonormal basis proportional to ``i ** -alpha`` (total 1). Larger alpha = fewer
  effective dimensions = wider non-mated spread and more near-duplicate strangers.
* ``B'``: the within-person spread (pose, light, age), same spectrum, total ``within``.
* ``s``: per-image capture quality; its spread widens the mated distribution.

:data:`SFACE_MODEL` holds parameters fitted (:func:`calibrate`) on the opencv-zoo SFace pack with
``../shared/data/faces``: mated pairs from ``glint24_aligned`` (24 people x 30 crops), non-mated
from those and the 221 ``iss_portraits``. Real versus model (cosine)::

                          real (10,236 mated, 424,542 non-mated pairs)    model
    mated mean / std      0.590 / 0.132                                   0.599 / 0.126
    mated 5th percentile  0.368                                           0.379
    non-mated mean / std  0.112 / 0.089                                   0.114 / 0.095
    non-mated q99.9       0.395                                           0.394

Aligned celebrity crops are kinder than CCTV: real probes from footage score lower against
their mates, which makes every figure measured here an optimistic bound on index misses.

Re-run the fit with ``python bench/bench_index.py --calibrate``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FaceSpaceModel:
    """Parameters of the synthetic embedding model (see the module docstring)."""

    dim: int = 128
    mean_norm: float = 0.37
    alpha: float = 0.5
    within: float = 0.6
    spread: float = 0.3
    basis_seed: int = 7

    def _basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.basis_seed)
        q, _ = np.linalg.qr(rng.standard_normal((self.dim, self.dim)))
        spectrum = np.arange(1, self.dim + 1, dtype=np.float64) ** -self.alpha
        spectrum /= spectrum.sum()
        u0 = q[:, 0]
        return u0, q[:, 1:], spectrum[: self.dim - 1] / spectrum[: self.dim - 1].sum()

    def identities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) float32 identity centres (not normalised)."""
        u0, basis, spectrum = self._basis()
        z = rng.standard_normal((n, len(spectrum))).astype(np.float32) * np.sqrt(spectrum).astype(np.float32)
        return (self.mean_norm * u0).astype(np.float32) + z @ basis.T.astype(np.float32)

    def samples(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n, D) float32 L2-normalised embeddings: one new capture of each centre."""
        _, basis, spectrum = self._basis()
        n = len(centres)
        e = rng.standard_normal((n, len(spectrum))).astype(np.float32) * np.sqrt(self.within * spectrum).astype(np.float32)
        s = np.exp(rng.normal(0.0, self.spread, (n, 1))).astype(np.float32)
        x = centres + s * (e @ basis.T.astype(np.float32))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def as_dict(self) -> dict:
        return asdict(self)


def score_stats(embeddings: np.ndarray, labels: np.ndarray, *, max_nonmated: int = 2_000_000, seed: int = 0) -> dict:
    """Mated and non-mated cosine statistics of labelled (N, D) L2-normalised embeddings."""
    labels = np.asarray(labels)
    scores = embeddings @ embeddings.T
    upper = np.triu_indices(len(labels), 1)
    same = labels[upper[0]] == labels[upper[1]]
    values = scores[upper]
    mated, nonmated = values[same], values[~same]
    if len(nonmated) > max_nonmated:
        nonmated = np.random.default_rng(seed).choice(nonmated, max_nonmated, replace=False)
    return {
        "mated_mean": float(mated.mean()), "mated_std": float(mated.std()),
        "mated_q05": float(np.quantile(mated, 0.05)),
        "nonmated_mean": float(nonmated.mean()), "nonmated_std": float(nonmated.std()),
        "nonmated_q999": float(np.quantile(nonmated, 0.999)),
        "n_mated": int(len(mated)), "n_nonmated": int(len(nonmated)),
    }


def model_stats(model: FaceSpaceModel, *, identities: int = 600, per_identity: int = 4, seed: int = 0) -> dict:
    """:func:`score_stats` of a synthetic sample from ``model``."""
    rng = np.random.default_rng(seed)
    centres = np.repeat(model.identities(identities, rng), per_identity, axis=0)
    labels = np.repeat(np.arange(identities), per_identity)
    return score_stats(model.samples(centres, rng), labels)


def calibrate(target: dict, *, start: FaceSpaceModel | None = None, dim: int = 128) -> FaceSpaceModel:
    """Fit mean_norm, alpha, within and spread so the model's score statistics match ``target``.

    ``target``: :func:`score_stats` of real embeddings. Matches mated mean/std, non-mated mean
    and the non-mated q99.9 tail (what decides how many strangers crowd the top of a list).
    """
    from scipy.optimize import minimize

    start = start or FaceSpaceModel(dim=dim)
    keys = ("mated_mean", "mated_std", "nonmated_mean", "nonmated_q999")

    def loss(params) -> float:
        mean_norm, alpha, within, spread = params
        if not (0 <= mean_norm < 2 and 0 <= alpha < 3 and 0 < within < 10 and 0 <= spread < 2):
            return 1e3
        stats = model_stats(FaceSpaceModel(dim, mean_norm, alpha, within, spread, start.basis_seed), identities=300, per_identity=4)
        return float(sum((stats[k] - target[k]) ** 2 for k in keys))

    x0 = [start.mean_norm, start.alpha, start.within, start.spread]
    best = minimize(loss, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 300})
    mean_norm, alpha, within, spread = (round(float(v), 4) for v in best.x)
    return FaceSpaceModel(dim, mean_norm, alpha, within, spread, start.basis_seed)


#: fitted on opencv-zoo SFace embeddings of ../shared/data (see the module docstring).
SFACE_MODEL = FaceSpaceModel(dim=128, mean_norm=0.4792, alpha=0.4603, within=0.7503, spread=0.3509, basis_seed=7)
