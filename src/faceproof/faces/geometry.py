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

# A generic adult head, millimetres, for solvePnP: eyes, nose tip, mouth corners (x right,
# y down, z towards the camera). Only yaw/pitch signs and rough magnitudes matter for quality.
_GENERIC_HEAD_3D = np.array(
    [
        [-32.0, -35.0, -30.0],
        [32.0, -35.0, -30.0],
        [0.0, 0.0, 0.0],
        [-25.0, 35.0, -25.0],
        [25.0, 35.0, -25.0],
    ],
    dtype=np.float64,
)


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


def estimate_head_pose(
    landmarks: npt.NDArray[np.floating], image_width: int, image_height: int
) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from five points and a generic head (rough, for quality)."""
    focal = float(max(image_width, image_height))
    camera = np.array(
        [[focal, 0, image_width / 2], [0, focal, image_height / 2], [0, 0, 1]], dtype=np.float64
    )
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 1, 2)
    ok, rvec, _ = cv2.solvePnP(_GENERIC_HEAD_3D, points, camera, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return (math.nan, math.nan, math.nan)
    rotation, _ = cv2.Rodrigues(rvec)
    # Euler angles (x: pitch, y: yaw, z: roll) of the head relative to the camera.
    sy = math.hypot(rotation[0, 0], rotation[1, 0])
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    yaw = math.degrees(math.atan2(-rotation[2, 0], sy))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    # The generic model faces +z; fold pitch into [-90, 90] so a frontal face reads ~0.
    if pitch > 90:
        pitch -= 180
    elif pitch < -90:
        pitch += 180
    return (yaw, pitch, roll)
