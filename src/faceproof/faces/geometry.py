"""Alignment and head-pose geometry from the five YuNet landmarks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["ARCFACE_TEMPLATE_112", "align_face", "estimate_head_pose", "similarity_transform"]

# The canonical 112x112 positions SFace (and ArcFace-style recognisers) were trained on.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

# Proportions of an average adult face, relative to the inter-eye distance, for head pose from
# five points: how far the nose tip stands in front of the eyes, and how far the mouth is below
# them. YuNet puts the nose tip 57% of the way from the eye line to the mouth line on frontal
# faces (median over the 582 shared face images, 0.555-0.581 in each of the four sets; the
# ArcFace template's 49% would read every face as looking down by ~10 degrees).
_NOSE_DEPTH_PER_IED = 0.55
_EYE_TO_MOUTH_PER_IED = 1.16
_FRONTAL_NOSE_FRACTION = 0.57


def similarity_transform(
    src: npt.NDArray[np.floating], dst: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """Least-squares similarity (Umeyama 1991) mapping src points onto dst; a 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0  # no reflections
    rotation = u @ d @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float(np.trace(np.diag(s) @ d) / var_src) if var_src > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(
    rgb: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.floating], size: int = 112
) -> npt.NDArray[np.uint8]:
    """Warp the face to the canonical template at size x size (template scaled from 112)."""
    template = ARCFACE_TEMPLATE_112 * (size / 112.0)
    matrix = similarity_transform(landmarks, template)
    # Area-like filtering matters when a large face is shrunk a lot; INTER_LINEAR matches OpenCV.
    warped = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return np.asarray(warped, dtype=np.uint8)


def estimate_head_pose(landmarks: npt.NDArray[np.floating]) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from the five landmarks (rough: for quality, not liveness).

    Roll is the eye line's angle. In the roll-free frame, a head turned by yaw moves the nose tip
    sideways by depth*sin(yaw) while the eyes close up to ied*cos(yaw), so
    yaw = atan((nose offset / observed ied) / depth ratio); pitch likewise from where the nose
    sits between the eye line and the mouth. Signs: yaw > 0 when the nose points to image right,
    pitch > 0 when the head tilts up (nose tip moves towards the eyes).
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye = points[0], points[1]
    eye_vector = left_eye - right_eye
    ied = float(np.hypot(*eye_vector))
    if ied < 1e-6:
        return (math.nan, math.nan, math.nan)
    roll = math.degrees(math.atan2(eye_vector[1], eye_vector[0]))
    # Undo roll: express points in a frame whose x axis runs along the eye line.
    cos_r, sin_r = eye_vector / ied
    rotation = np.array([[cos_r, sin_r], [-sin_r, cos_r]])
    local = (points - (right_eye + left_eye) / 2) @ rotation.T
    nose_x, nose_y = local[2]
    mouth_y = float(local[3:, 1].mean())
    yaw = math.degrees(math.atan2(nose_x / ied, _NOSE_DEPTH_PER_IED))
    if mouth_y <= 1e-6:
        return (yaw, math.nan, roll)
    fraction = nose_y / mouth_y
    # The eye-to-mouth span foreshortens with pitch too; its frontal length is ~1.16 ied.
    pitch = math.degrees(
        math.atan2((_FRONTAL_NOSE_FRACTION - fraction) * _EYE_TO_MOUTH_PER_IED, _NOSE_DEPTH_PER_IED)
    )
    return (yaw, pitch, roll)
