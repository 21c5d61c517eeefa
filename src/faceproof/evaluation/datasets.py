"""Labelled face sets: read `labels.csv`, enrol each image once, build within-set pairs.

Embeddings exist only in memory for the length of an evaluation; nothing is cached on disk.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceproof.errors import DataFileError, FaceproofError, InputError
from faceproof.reasons import ReasonCode

__all__ = ["EnrolledSet", "LabelledImage", "PairIndex", "enrol", "read_labels", "within_set_pairs"]

_USABLE_FACE_FLAGS = {"single", "partial", ""}


@dataclass(frozen=True, slots=True)
class LabelledImage:
    path: Path
    identity: str
    subset: str


def read_labels(path: str | Path) -> list[LabelledImage]:
    """Images with exactly one known identity, from a CSV with `path` and `identity` columns.

    Optional columns: `set` (pairs are drawn within a set) and `faces` (rows flagged `multi` or
    `no_face` are left out, as in the shared data's pairs.csv). Paths are relative to the CSV.
    """
    csv_path = Path(path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(
            ReasonCode.LABELS_INVALID, f"cannot read {csv_path.name}: {exc}"
        ) from exc
    if not rows or not {"path", "identity"} <= set(rows[0]):
        raise DataFileError(ReasonCode.LABELS_INVALID, "labels need `path` and `identity` columns")
    images = []
    for row in rows:
        identity = (row.get("identity") or "").strip()
        if not identity or "|" in identity:
            continue
        if (row.get("faces") or "").strip() not in _USABLE_FACE_FLAGS:
            continue
        images.append(
            LabelledImage(csv_path.parent / row["path"], identity, (row.get("set") or "").strip())
        )
    if not images:
        raise DataFileError(ReasonCode.LABELS_INVALID, "no labelled single-identity images")
    return images


@dataclass
class EnrolledSet:
    """Per image: the embeddings of each model (or an FTE code) and the inter-eye distance."""

    images: list[LabelledImage]
    embeddings: dict[str, npt.NDArray[np.float32]] = field(repr=False)  # model -> (n, d)
    enrolled: npt.NDArray[np.bool_] = field(repr=False)
    inter_eye_px: npt.NDArray[np.float64] = field(repr=False)
    fte_codes: dict[int, str] = field(default_factory=dict)
    seconds_per_image: dict[str, list[float]] = field(default_factory=dict)


def enrol(
    images: Sequence[LabelledImage],
    embed_one: Callable[[Path], tuple[dict[str, npt.NDArray[np.float32]], float]],
    models: Sequence[str],
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> EnrolledSet:
    """Run `embed_one` (path -> ({model: embedding}, inter-eye px)) over every image once."""
    vectors: dict[str, list[npt.NDArray[np.float32] | None]] = {m: [] for m in models}
    enrolled = np.zeros(len(images), dtype=bool)
    ied = np.zeros(len(images))
    fte: dict[int, str] = {}
    for i in progress(range(len(images))):
        try:
            embeddings, ied[i] = embed_one(images[i].path)
        except InputError as exc:  # image unusable: a failure to enrol, not a crash
            fte[i] = exc.code.value
            for m in models:
                vectors[m].append(None)
            continue
        except FaceproofError:
            raise
        enrolled[i] = True
        for m in models:
            vectors[m].append(embeddings[m])
    stacked = {}
    for m, vs in vectors.items():
        dim = next((v.shape[0] for v in vs if v is not None), 1)
        stacked[m] = np.stack([v if v is not None else np.zeros(dim, np.float32) for v in vs])
    return EnrolledSet(list(images), stacked, enrolled, ied, fte)


@dataclass(frozen=True, slots=True)
class PairIndex:
    """Index pairs (i, j), i < j, and whether they are mated (same identity)."""

    left: npt.NDArray[np.intp]
    right: npt.NDArray[np.intp]
    genuine: npt.NDArray[np.bool_]

    def subset(self, mask: npt.NDArray[np.bool_]) -> PairIndex:
        return PairIndex(self.left[mask], self.right[mask], self.genuine[mask])


def within_set_pairs(images: Sequence[LabelledImage]) -> PairIndex:
    """All pairs within each set: every mated pair and every non-mated one.

    Cross-set impostors are left out: grey 1990s lab shots against colour press photos would be
    trivially easy and flatter the impostor tail.
    """
    left, right, genuine = [], [], []
    subsets = np.array([img.subset for img in images])
    identities = np.array([img.identity for img in images])
    for name in np.unique(subsets):
        idx = np.nonzero(subsets == name)[0]
        i, j = np.triu_indices(idx.size, k=1)
        left.append(idx[i])
        right.append(idx[j])
        genuine.append(identities[idx[i]] == identities[idx[j]])
    return PairIndex(np.concatenate(left), np.concatenate(right), np.concatenate(genuine))
