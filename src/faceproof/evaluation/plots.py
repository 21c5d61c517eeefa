"""DET plots (PNG) for one or more systems.

Uses matplotlib's object API (``Figure`` + ``FigureCanvasAgg``) so no global pyplot state,
backend switch or window is involved; matplotlib is imported inside the function so importing
:mod:`faceproof.evaluation` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from faceproof.evaluation.metrics import DEFAULT_FMR_TARGETS, format_fmr

__all__ = ["curve_eer", "plot_det"]

FloatArray = npt.NDArray[np.float64]

# Visible range of both axes; rates outside it are drawn past the frame and clipped.
_LOW, _HIGH = 1e-5, 0.5
# Values are clipped here before the probit so 0 and 1 stay finite (and off-axis).
_EPS = 1e-9
_TICKS = (1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.5)


def _probit(values: npt.ArrayLike) -> FloatArray:
    """Normal deviate of each rate (the DET axis transform), vectorised over unique values."""
    arr = np.clip(np.asarray(values, dtype=np.float64), _EPS, 1.0 - _EPS)
    # Curves have at most one distinct rate per score, so transforming uniques bounds the work.
    uniq, inverse = np.unique(arr, return_inverse=True)
    inv_cdf = NormalDist().inv_cdf
    mapped = np.fromiter((inv_cdf(float(v)) for v in uniq), dtype=np.float64, count=uniq.size)
    return mapped[inverse.reshape(arr.shape)]


def _percent(rate: float) -> str:
    return f"{rate * 100:g}%"


def curve_eer(fmr: npt.ArrayLike, fnmr: npt.ArrayLike) -> float:
    """EER read off a curve: mean of FMR and FNMR at the point minimising |FMR - FNMR|."""
    f = np.asarray(fmr, dtype=np.float64)
    g = np.asarray(fnmr, dtype=np.float64)
    if f.shape != g.shape or f.ndim != 1 or f.size == 0:
        raise ValueError("fmr and fnmr must be non-empty 1-D arrays of the same length")
    i = int(np.argmin(np.abs(f - g)))
    return float((f[i] + g[i]) / 2.0)


def plot_det(
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    path: str | os.PathLike[str],
    title: str = "DET curve",
) -> Path:
    """Write a DET plot (FNMR vs FMR on normal-deviate axes) as PNG to `path`; return the path.

    `curves` maps a label to (fmr, fnmr) arrays, e.g. from ``metrics.det_curve``. The legend
    shows each curve's EER; dotted vertical lines mark FMR 1e-2, 1e-3 and 1e-4.
    """
    if not curves:
        raise ValueError("no curves to plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 6.0), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself to fig; savefig renders through Agg
    ax = fig.add_subplot()

    for label, (fmr, fnmr) in curves.items():
        eer_value = curve_eer(fmr, fnmr)
        ax.plot(
            _probit(fmr),
            _probit(fnmr),
            linewidth=1.5,
            label=f"{label} (EER {eer_value * 100:.2f}%)",
        )

    lo, hi = _probit([_LOW, _HIGH])
    for target in DEFAULT_FMR_TARGETS:
        x = float(_probit([target])[0])
        ax.axvline(x, color="0.5", linestyle=":", linewidth=1.0)
        ax.text(x, hi, f" FMR {format_fmr(target)}", rotation=90, va="top", ha="left", fontsize=7)
    ax.plot([lo, hi], [lo, hi], color="0.8", linestyle="--", linewidth=0.8)  # EER diagonal

    ticks = _probit(_TICKS)
    labels = [_percent(t) for t in _TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("False match rate (FMR)")
    ax.set_ylabel("False non-match rate (FNMR)")
    ax.set_title(title)
    ax.grid(True, linestyle="-", linewidth=0.3, color="0.85")
    ax.legend(loc="lower left", fontsize=8)

    out = Path(path)
    fig.savefig(out, format="png")
    return out
