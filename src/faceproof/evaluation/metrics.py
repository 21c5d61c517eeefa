"""Biometric verification metrics on score arrays (numpy only, no face models).

Conventions (every function in this module follows them):

* **Score direction.** Scores are similarities: higher means more alike. Genuine (mated) pairs
  should score high, impostor (non-mated) pairs low.
* **Decision rule.** A pair is *accepted* (declared a match) when ``score >= threshold``.
  Ties at the threshold are accepted.
* **FMR(t)** = fraction of impostor scores ``>= t`` (false matches).
  **FNMR(t)** = fraction of genuine scores ``< t`` (false non-matches).
  **TAR(t)** = 1 - FNMR(t) = fraction of genuine scores ``>= t``.
* **Inputs.** Score arrays are converted to 1-D float64. An empty genuine or impostor array
  raises :class:`EmptyScoresError` (a ``ValueError``); NaN or infinite scores, or arrays that
  are not 1-D, raise :class:`InvalidScoresError` (a ``ValueError``). No function returns nan.
  A NaN threshold is rejected the same way. FMR targets must lie in [0, 1].
* **Candidate thresholds.** Curves and the EER are evaluated at every distinct score (the sorted
  union of genuine and impostor scores) plus ``nextafter(max score, +inf)``, the point where
  every pair is rejected (FMR = 0, FNMR = 1). Between two consecutive candidates the rates are
  constant, so this set covers every operating point the scores allow.
* **threshold_at_fmr.** The smallest float ``t`` with FMR(t) <= target. With ``n`` impostor
  scores sorted descending as ``s[0] >= s[1] >= ...`` and ``k = floor(target * n)`` (the number
  of false matches the target allows), ``count(s >= t) <= k`` holds exactly when ``t > s[k]``,
  so ``t = nextafter(s[k], +inf)``: just above the (k+1)-th largest impostor score. Ties are
  handled by this construction: if ``s[k-1] == s[k]`` the tied scores are all rejected and the
  achieved FMR is below the target. If ``target * n < 1`` then ``k = 0`` and the threshold sits
  just above the maximum impostor score (achieved FMR = 0). If ``k >= n`` (target 1) every
  threshold qualifies and the minimum impostor score is returned.
* **EER.** Over the candidate thresholds, the one minimising ``|FMR - FNMR|`` (compared exactly
  in integer arithmetic; ties go to the lowest threshold). The EER is reported as the mean
  ``(FMR + FNMR) / 2`` at that threshold. No interpolation between candidates: the reported
  value is an operating point the scores actually reach.
* **AUC.** Mann-Whitney U / (n_genuine * n_impostor): the fraction of (genuine, impostor) pairs
  with genuine > impostor, ties counting 1/2. 1.0 = perfectly separated, 0.5 = chance.
* **FTE (failure to enrol).** A pair whose image could not be enrolled (no usable face) has no
  score, so it is *not* in the score arrays; callers count such pairs separately
  (``n_fte_genuine``, ``n_fte_impostor``). Plain rates ignore them. *Generalized* rates
  (ISO/IEC 19795-1 style) count them as decisions the system made: a genuine pair with FTE is
  a false non-match, an impostor pair with FTE is a correct non-match::

      GFMR(t)  = count(impostor >= t) / (n_impostor + n_fte_impostor)
      GFNMR(t) = (count(genuine < t) + n_fte_genuine) / (n_genuine + n_fte_genuine)
      GTAR(t)  = 1 - GFNMR(t)

  The operating threshold for a generalized TAR at a target FMR is the *plain* one (set on the
  impostor pairs that were scored), because FTE impostors cannot be accepted at any threshold
  and must not buy a more permissive threshold. Hence GTAR <= TAR whenever n_fte_genuine > 0.
* **Rule of 3.** A target FMR is statistically supported only with at least ``3 / FMR``
  impostor pairs (with zero errors in n trials the 95 % upper bound on the rate is about 3/n).
  Below that the threshold is reported but flagged low-confidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_FMR_TARGETS",
    "EmptyScoresError",
    "InvalidScoresError",
    "VerificationReport",
    "as_scores",
    "det_curve",
    "eer",
    "fmr_fnmr",
    "format_fmr",
    "generalized_fmr_fnmr",
    "generalized_tar_at_fmr",
    "is_low_confidence",
    "min_impostors_for_fmr",
    "roc_auc",
    "tar_at_fmr",
    "threshold_at_fmr",
    "verification_report",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_FMR_TARGETS: tuple[float, ...] = (1e-2, 1e-3, 1e-4)


class EmptyScoresError(ValueError):
    """A genuine or impostor score array is empty, so the rate is undefined."""


class InvalidScoresError(ValueError):
    """Scores are not a 1-D array of finite numbers (NaN, inf, wrong shape)."""


# --------------------------------------------------------------------------- validation


def as_scores(values: npt.ArrayLike, name: str = "scores") -> FloatArray:
    """Validated 1-D float64 scores: raises EmptyScoresError / InvalidScoresError."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidScoresError(f"{name} scores are not numeric") from exc
    if arr.ndim != 1:
        raise InvalidScoresError(f"{name} scores must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise EmptyScoresError(f"{name} scores are empty")
    if not np.all(np.isfinite(arr)):
        # NaN has no place in the ordering; a silent NaN would count as neither side of t.
        raise InvalidScoresError(f"{name} scores contain NaN or infinite values")
    return arr


def _threshold(threshold: float) -> float:
    t = float(threshold)
    if math.isnan(t):
        raise InvalidScoresError("threshold is NaN")
    return t


def _target(target_fmr: float) -> float:
    t = float(target_fmr)
    if not 0.0 <= t <= 1.0:  # also rejects NaN
        raise ValueError(f"target FMR must be in [0, 1], got {target_fmr!r}")
    return t


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def format_fmr(fmr: float) -> str:
    """Compact, parseable label for an FMR: 1e-4 -> "1e-4", 0.025 -> "2.5e-2"."""
    if fmr == 0:
        return "0"
    mantissa, exponent = f"{fmr:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def min_impostors_for_fmr(target_fmr: float) -> int:
    """Impostor pairs needed to support `target_fmr` by the rule of 3: ceil(3 / target)."""
    t = _target(target_fmr)
    if t == 0:
        raise ValueError("no finite number of impostors supports FMR 0")
    return math.ceil(3.0 / t)


def is_low_confidence(n_impostor: int, target_fmr: float) -> bool:
    """True when n_impostor < 3 / target_fmr (rule of 3)."""
    t = _target(target_fmr)
    n = _count(n_impostor, "n_impostor")
    # 3/n is correctly rounded, so comparing it with the target avoids n*t rounding at the edge.
    return n == 0 or t == 0 or 3.0 / n > t


# --------------------------------------------------------------------------- core rates


def _counts_at(
    gen_sorted: FloatArray, imp_sorted: FloatArray, thresholds: FloatArray
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(false matches, false non-matches) at each threshold, from ascending-sorted scores."""
    # side="left" gives count(x < t): exactly the rejected side of the >= rule.
    false_matches = imp_sorted.size - np.searchsorted(imp_sorted, thresholds, side="left")
    false_non_matches = np.searchsorted(gen_sorted, thresholds, side="left")
    return false_matches.astype(np.int64), false_non_matches.astype(np.int64)


def fmr_fnmr(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, threshold: float
) -> tuple[float, float]:
    """(FMR, FNMR) at `threshold`: FMR = mean(impostor >= t), FNMR = mean(genuine < t)."""
    gen = as_scores(genuine, "genuine")
    imp = as_scores(impostor, "impostor")
    t = _threshold(threshold)
    return float(np.count_nonzero(imp >= t)) / imp.size, float(np.count_nonzero(gen < t)) / gen.size


def generalized_fmr_fnmr(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    threshold: float,
    *,
    n_fte_genuine: int = 0,
    n_fte_impostor: int = 0,
) -> tuple[float, float]:
    """(GFMR, GFNMR) at `threshold`, counting FTE pairs as rejections (see module docstring)."""
    gen = as_scores(genuine, "genuine")
    imp = as_scores(impostor, "impostor")
    t = _threshold(threshold)
    fte_gen = _count(n_fte_genuine, "n_fte_genuine")
    fte_imp = _count(n_fte_impostor, "n_fte_impostor")
    gfmr = float(np.count_nonzero(imp >= t)) / (imp.size + fte_imp)
    gfnmr = float(np.count_nonzero(gen < t) + fte_gen) / (gen.size + fte_gen)
    return gfmr, gfnmr


def _threshold_at_fmr(imp: FloatArray, target: float) -> float:
    n = imp.size
    k = math.floor(target * n)
    # target*n can round across an integer (0.29*100 = 28.999...). Settle k on the same float
    # comparison the FMR uses, so FMR(t) = k/n <= target holds as computed.
    while k + 1 <= n and (k + 1) / n <= target:
        k += 1
    while k > 0 and k / n > target:
        k -= 1
    if k >= n:
        return float(imp.min())
    kth_largest = float(np.partition(imp, n - 1 - k)[n - 1 - k])  # s[k] in descending order
    return float(np.nextafter(kth_largest, np.inf))


def threshold_at_fmr(impostor: npt.ArrayLike, target_fmr: float) -> float:
    """Smallest threshold t with FMR(t) <= target_fmr.

    t = nextafter(s[k], +inf) where s is the impostor scores sorted descending and
    k = floor(target_fmr * n); see the module docstring for ties and target * n < 1.
    """
    return _threshold_at_fmr(as_scores(impostor, "impostor"), _target(target_fmr))


def tar_at_fmr(genuine: npt.ArrayLike, impostor: npt.ArrayLike, target_fmr: float) -> float:
    """TAR = 1 - FNMR at threshold_at_fmr(impostor, target_fmr)."""
    gen = as_scores(genuine, "genuine")
    t = threshold_at_fmr(impostor, target_fmr)
    return float(np.count_nonzero(gen >= t)) / gen.size


def generalized_tar_at_fmr(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    target_fmr: float,
    *,
    n_fte_genuine: int = 0,
) -> float:
    """GTAR at the plain threshold_at_fmr: FTE genuine pairs count as false non-matches."""
    gen = as_scores(genuine, "genuine")
    fte_gen = _count(n_fte_genuine, "n_fte_genuine")
    t = threshold_at_fmr(impostor, target_fmr)
    return float(np.count_nonzero(gen >= t)) / (gen.size + fte_gen)


def _candidates(gen: FloatArray, imp: FloatArray) -> FloatArray:
    union = np.unique(np.concatenate([gen, imp]))
    # The extra point above the maximum closes the curve at FMR = 0, FNMR = 1.
    return np.append(union, np.nextafter(union[-1], np.inf))


def det_curve(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(fmr, fnmr, thresholds) at every candidate threshold, thresholds ascending.

    fmr is non-increasing and fnmr non-decreasing along the arrays; the first point accepts
    everything (FMR = 1, FNMR = 0) and the last rejects everything (FMR = 0, FNMR = 1).
    """
    gen = np.sort(as_scores(genuine, "genuine"))
    imp = np.sort(as_scores(impostor, "impostor"))
    thresholds = _candidates(gen, imp)
    fm, fnm = _counts_at(gen, imp, thresholds)
    return fm / imp.size, fnm / gen.size, thresholds


def eer(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[float, float]:
    """(EER, threshold): candidate minimising |FMR - FNMR|, EER = (FMR + FNMR) / 2 there."""
    gen = np.sort(as_scores(genuine, "genuine"))
    imp = np.sort(as_scores(impostor, "impostor"))
    thresholds = _candidates(gen, imp)
    fm, fnm = _counts_at(gen, imp, thresholds)
    n_gen, n_imp = gen.size, imp.size
    if n_gen * n_imp < 2**62:
        # |fm/n_imp - fnm/n_gen| scaled by n_imp*n_gen: exact, so near-ties are not decided by
        # rounding noise.
        gap: npt.NDArray[Any] = np.abs(fm * n_gen - fnm * n_imp)
    else:  # pragma: no cover - needs > 2e9 x 2e9 pairs
        gap = np.abs(fm / n_imp - fnm / n_gen)
    i = int(np.argmin(gap))  # argmin takes the first, i.e. lowest, threshold on ties
    value = (float(fm[i]) / n_imp + float(fnm[i]) / n_gen) / 2.0
    return value, float(thresholds[i])


def roc_auc(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Area under the ROC: P(genuine > impostor) + P(genuine == impostor) / 2 (Mann-Whitney)."""
    gen = as_scores(genuine, "genuine")
    imp = np.sort(as_scores(impostor, "impostor"))
    below = np.searchsorted(imp, gen, side="left")  # impostors strictly below each genuine
    at_or_below = np.searchsorted(imp, gen, side="right")
    # below + at_or_below = 2*(strictly below) + ties: twice U, summed in integers.
    twice_u = int(np.sum(below, dtype=np.int64)) + int(np.sum(at_or_below, dtype=np.int64))
    return twice_u / (2.0 * gen.size * imp.size)


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class VerificationReport:
    """Summary of a verification experiment. Dict keys are FMR targets."""

    n_genuine: int
    n_impostor: int
    n_fte_genuine: int
    n_fte_impostor: int
    n_images: int
    n_fte_images: int
    fte_rate: float | None  # n_fte_images / n_images; None when n_images is unknown (0)
    auc: float
    eer: float
    eer_threshold: float
    tar_at_fmr: dict[float, float]
    gtar_at_fmr: dict[float, float]
    thresholds_at_fmr: dict[float, float]
    low_confidence_fmrs: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; FMR keys become labels like "1e-4" (float() parses them back)."""

        def keyed(d: dict[float, float]) -> dict[str, float]:
            return {format_fmr(k): v for k, v in d.items()}

        return {
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "n_fte_genuine": self.n_fte_genuine,
            "n_fte_impostor": self.n_fte_impostor,
            "n_images": self.n_images,
            "n_fte_images": self.n_fte_images,
            "fte_rate": self.fte_rate,
            "auc": self.auc,
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "tar_at_fmr": keyed(self.tar_at_fmr),
            "gtar_at_fmr": keyed(self.gtar_at_fmr),
            "thresholds_at_fmr": keyed(self.thresholds_at_fmr),
            "low_confidence_fmrs": [format_fmr(f) for f in self.low_confidence_fmrs],
        }


def verification_report(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    *,
    n_fte_genuine: int = 0,
    n_fte_impostor: int = 0,
    n_images: int = 0,
    n_fte_images: int = 0,
    fmr_targets: Iterable[float] = DEFAULT_FMR_TARGETS,
) -> VerificationReport:
    """All headline numbers for one experiment (plain and generalized TAR, AUC, EER)."""
    gen = as_scores(genuine, "genuine")
    imp = as_scores(impostor, "impostor")
    fte_gen = _count(n_fte_genuine, "n_fte_genuine")
    fte_imp = _count(n_fte_impostor, "n_fte_impostor")
    images = _count(n_images, "n_images")
    fte_images = _count(n_fte_images, "n_fte_images")
    if fte_images > images:
        raise ValueError(f"n_fte_images ({fte_images}) exceeds n_images ({images})")
    targets = [_target(t) for t in fmr_targets]

    thresholds = {t: _threshold_at_fmr(imp, t) for t in targets}
    accepted = {t: int(np.count_nonzero(gen >= thr)) for t, thr in thresholds.items()}
    eer_value, eer_thr = eer(gen, imp)
    return VerificationReport(
        n_genuine=gen.size,
        n_impostor=imp.size,
        n_fte_genuine=fte_gen,
        n_fte_impostor=fte_imp,
        n_images=images,
        n_fte_images=fte_images,
        fte_rate=fte_images / images if images else None,
        auc=roc_auc(gen, imp),
        eer=eer_value,
        eer_threshold=eer_thr,
        tar_at_fmr={t: a / gen.size for t, a in accepted.items()},
        gtar_at_fmr={t: a / (gen.size + fte_gen) for t, a in accepted.items()},
        thresholds_at_fmr=thresholds,
        low_confidence_fmrs=[t for t in targets if is_low_confidence(imp.size, t)],
    )
