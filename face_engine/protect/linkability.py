"""Global linkability D_sys of Gomez-Barrero et al. (IEEE TIFS 2017), the measure the
ISO/IEC 30136 / 24745 evaluation literature uses for unlinkability.

Given scores between references of the *same* subject under different keys (mated) and
of *different* subjects (non-mated), the local measure with equal priors is
D(s) = max(0, 2 p(mated | s) - 1) = max(0, (LR - 1) / (LR + 1)), LR = f_m(s) / f_nm(s),
and D_sys = E_mated[D(s)] in [0, 1]: 0 = fully unlinkable, 1 = fully linkable.
Densities are estimated with shared histograms, so small samples bias D_sys slightly
upward (noise makes LR deviate from 1); compare against a mated-vs-non-mated baseline
drawn from the same distribution when judging "close to 0".
"""

from __future__ import annotations

import numpy as np


def linkability_dsys(mated: np.ndarray, non_mated: np.ndarray, bins: int = 50) -> float:
    mated = np.asarray(mated, dtype=np.float64).ravel()
    non_mated = np.asarray(non_mated, dtype=np.float64).ravel()
    if mated.size == 0 or non_mated.size == 0:
        raise ValueError("both score sets must be non-empty")
    lo = float(min(mated.min(), non_mated.min()))
    hi = float(max(mated.max(), non_mated.max()))
    if hi <= lo:
        return 0.0
    edges = np.linspace(lo, hi, bins + 1)
    f_m, _ = np.histogram(mated, bins=edges, density=True)
    f_nm, _ = np.histogram(non_mated, bins=edges, density=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(f_nm > 0, f_m / np.where(f_nm > 0, f_nm, 1.0), np.inf)
        local = np.where(np.isinf(ratio), 1.0, (ratio - 1.0) / (ratio + 1.0))
    local = np.clip(local, 0.0, 1.0)
    widths = np.diff(edges)
    return float(np.sum(local * f_m * widths))
