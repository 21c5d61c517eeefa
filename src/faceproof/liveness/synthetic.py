"""Liveness test clips made in code from the bundled public-domain portrait (no files needed).

One renderer draws a textured triangle mesh with 3D vertices through a pinhole camera (painter's
order, one dense `cv2.remap` per frame), so attacks and bona fide-like heads are drawn alike:

- ATTACKS: the photo as a flat print (halftone dots at 45 degrees, duller gamut, white paper
  border) or on a phone screen (pixel grid with RGB sub-pixel stripes, a glare spot, black
  bezel with a light rim, brighter and bluer), as a plane of small triangles: held still with
  hand jitter, tilted left and right about the vertical axis, swayed and scaled, bent (a
  cylinder) while tilting, all in front of a synthetic room background, with a mild camera
  blur.
- VIDEO REPLAY: a bona fide-like clip played on the phone screen, held with hand jitter. Its
  landmarks carry the recorded head's parallax: only a challenge or the passive screen cues
  (`liveness.cues`) can reject it.
- BONA FIDE-LIKE: the portrait's 468-point face mesh, given the model's own depth (z), rotated in
  3D about a point behind the face (piecewise-affine warp of the mesh's Delaunay triangles),
  optionally following challenge actions: turns, look up, a blink (the upper-lid points travel
  onto the lower lid, then the lid is painted with skin and a lash line) and an open mouth (the
  jaw drops from shut lips; teeth, a dark cavity and a tongue are painted into the opening).

These clips are a lower bar than real attacks and real faces: see docs/liveness.md.
Everything stays in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt
from scipy.spatial import Delaunay  # type: ignore[import-untyped]

from faceproof.faces.detector import FaceDetector
from faceproof.liveness.clip import Clip
from faceproof.liveness.landmarks import MESH, FaceMeshLandmarker, Landmarker, Roi

__all__ = [
    "ATTACK_KINDS",
    "BONA_FIDE_KINDS",
    "SceneKit",
    "attack_clip",
    "bona_fide_clip",
    "replay_clip",
]

WIDTH, HEIGHT = 640, 480
FOCAL = 600.0  # pixels: about 56 degrees horizontal field of view, a laptop or phone camera

ATTACK_KINDS: Final = (
    "print_still",
    "print_tilt",
    "print_sway",
    "print_bent",
    "screen_still",
    "screen_tilt",
    "screen_sway",
)
BONA_FIDE_KINDS: Final = ("turns", "nod_and_turn", "challenge")

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


def _background(seed: int) -> U8:
    """A room-like backdrop: a vertical gradient, a few coloured panels, mild noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, HEIGHT)[:, None, None]
    base = (150 + 60 * y) * np.array([1.0, 0.95, 0.85])
    img = np.broadcast_to(base, (HEIGHT, WIDTH, 3)).copy()
    for _ in range(5):
        x0, y0 = int(rng.integers(0, WIDTH - 80)), int(rng.integers(0, HEIGHT - 80))
        w, h = int(rng.integers(60, 220)), int(rng.integers(60, 220))
        img[y0 : y0 + h, x0 : x0 + w] = rng.integers(40, 220, size=3)
    img += rng.normal(0, 3, img.shape)
    out: U8 = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _render(
    texture: U8,
    uv: F64,
    verts: F64,
    triangles: npt.NDArray[np.int32],
    background: U8,
) -> U8:
    """Draw textured triangles (uv in texture pixels, verts in camera space) over background."""
    z = np.maximum(verts[:, 2], 1.0)
    proj = _project(verts)
    index = np.full((HEIGHT, WIDTH), -1, dtype=np.int32)
    depth = z[triangles].mean(axis=1)
    for t in np.argsort(-depth):  # far first: nearer triangles overwrite them
        pts = np.round(proj[triangles[t]] * 16).astype(np.int32)
        cv2.fillConvexPoly(index, pts, int(t), lineType=cv2.LINE_8, shift=4)
    # Inverse affine per triangle: destination pixel -> texture coordinate.
    dst = proj[triangles]  # (T, 3, 2)
    src = uv[triangles]
    ones = np.ones((len(triangles), 3, 1))
    a = np.concatenate([dst, ones], axis=2)  # (T, 3, 3)
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-9
    inv = np.zeros((len(triangles), 3, 2))
    inv[ok] = np.linalg.solve(a[ok], src[ok])  # rows: coefficients for x, y, 1
    ys, xs = np.nonzero(index >= 0)
    tri = index[ys, xs]
    coef = inv[tri]
    map_x = np.full((HEIGHT, WIDTH), -1.0, dtype=np.float32)
    map_y = np.full((HEIGHT, WIDTH), -1.0, dtype=np.float32)
    map_x[ys, xs] = xs * coef[:, 0, 0] + ys * coef[:, 1, 0] + coef[:, 2, 0]
    map_y[ys, xs] = xs * coef[:, 0, 1] + ys * coef[:, 1, 1] + coef[:, 2, 1]
    drawn = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = (index >= 0)[:, :, None]
    out: U8 = np.where(mask, drawn, background).astype(np.uint8)
    return out


def _grid(width: float, height: float, n: int) -> tuple[F64, npt.NDArray[np.int32]]:
    """An n x n grid of vertices over a width x height rectangle and its triangles."""
    u, v = np.meshgrid(np.linspace(0, width, n + 1), np.linspace(0, height, n + 1))
    uv = np.column_stack([u.ravel(), v.ravel()])
    tris = []
    for r in range(n):
        for c in range(n):
            i = r * (n + 1) + c
            tris += [(i, i + 1, i + n + 2), (i, i + n + 2, i + n + 1)]
    return uv, np.asarray(tris, dtype=np.int32)


def _rotation(yaw: float, pitch: float, roll: float) -> F64:
    """Degrees; yaw about the vertical axis, pitch about the horizontal, roll in the image."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    out: F64 = rz @ ry @ rx
    return out


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True, slots=True, eq=False)
class SceneKit:
    """The portrait, its face mesh and a triangulation, computed once per process."""

    portrait: U8  # the subject as seen by the camera at rest, 640x480
    mesh: F64  # (468, 3) in portrait pixels, z in the same scale
    uv: F64  # mesh + anchor points (texture coordinates)
    triangles: npt.NDArray[np.int32]
    n_face: int  # the first n_face uv points are mesh points (the rest are static anchors)

    @classmethod
    def build(cls, landmarker: Landmarker | None = None) -> SceneKit:
        from faceproof.examples import example_portrait
        from faceproof.faces.detector import YuNetDetector

        photo = np.asarray(example_portrait(), dtype=np.uint8)
        # Put the face (box centre ~ (223, 119) in the 512 px original) at a selfie's size and
        # place: about 190 px wide, centred a little above the middle of a 640x480 frame.
        scale = 1.7
        big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        x0, y0 = round(223 * scale - WIDTH / 2), max(0, round(119 * scale - HEIGHT * 0.42))
        portrait: U8 = np.ascontiguousarray(big[y0 : y0 + HEIGHT, x0 : x0 + WIDTH], np.uint8)
        return cls._from_frame(portrait, YuNetDetector(), landmarker)

    @classmethod
    def from_portrait(
        cls,
        photo: U8,
        landmarker: Landmarker | None = None,
        detector: FaceDetector | None = None,
        face_width: float = 190.0,
    ) -> SceneKit:
        """Any RGB portrait with a face, placed as `build` places the example: scaled so the
        face box is `face_width` px wide, centred, a little above the middle of a 640x480
        frame. Where the photo does not reach, its edge pixels are smeared and blurred, with
        a soft seam (a hard one would read as a bezel or paper edge to the passive cues).
        Raises `FaceError(face_not_found)` when no face is found."""
        from faceproof.errors import FaceError
        from faceproof.faces.detector import YuNetDetector, rank_subject_faces
        from faceproof.reasons import ReasonCode

        detector = detector or YuNetDetector()
        h, w = photo.shape[:2]
        ranked = rank_subject_faces(detector.detect(photo), w, h)
        if not ranked:
            raise FaceError(ReasonCode.FACE_NOT_FOUND, "No face in the portrait.")
        box = ranked[0].box
        scale = face_width / max(box.width, 1.0)
        shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC  # no aliasing when shrinking
        big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=shrink)
        cx, cy = box.center[0] * scale, box.center[1] * scale
        x0, y0 = round(cx - WIDTH / 2), round(cy - HEIGHT * 0.42)
        bh, bw = big.shape[:2]
        pads = (max(0, -y0), max(0, y0 + HEIGHT - bh), max(0, -x0), max(0, x0 + WIDTH - bw))
        padded = cv2.copyMakeBorder(big, *pads, cv2.BORDER_REPLICATE)
        if any(pads):
            inside = np.zeros(padded.shape[:2], np.float32)
            inside[pads[0] : pads[0] + bh, pads[2] : pads[2] + bw] = 1.0
            weight = cv2.GaussianBlur(inside, (0, 0), 12.0)[:, :, None]
            smeared = cv2.GaussianBlur(padded, (0, 0), 25.0).astype(np.float32)
            padded = (weight * padded + (1 - weight) * smeared).astype(np.uint8)
        top, left = y0 + pads[0], x0 + pads[2]
        portrait: U8 = np.ascontiguousarray(padded[top : top + HEIGHT, left : left + WIDTH])
        return cls._from_frame(portrait, detector, landmarker)

    @classmethod
    def _from_frame(
        cls, portrait: U8, detector: FaceDetector, landmarker: Landmarker | None
    ) -> SceneKit:
        """The mesh and triangulation of a placed 640x480 portrait."""
        det = detector.detect(portrait)[0]
        lm = landmarker or FaceMeshLandmarker()
        mesh = lm.landmarks(portrait, Roi.from_detection(det))
        mesh = lm.landmarks(portrait, mesh.next_roi())
        points = mesh.points.astype(np.float64)
        # Static anchors: an ellipse around the face and the frame border.
        centre = points[:, :2].mean(axis=0)
        radius = (points[:, :2].max(axis=0) - points[:, :2].min(axis=0)) / 2
        angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        ring = centre + 1.35 * radius * np.column_stack([np.cos(angles), np.sin(angles)])
        border = [(x, y) for x in np.linspace(0, WIDTH - 1, 9) for y in (0, HEIGHT - 1)]
        border += [(x, y) for x in (0, WIDTH - 1) for y in np.linspace(0, HEIGHT - 1, 7)[1:-1]]
        uv = np.vstack([points[:, :2], ring, np.asarray(border, dtype=np.float64)])
        triangles = np.asarray(Delaunay(uv).simplices, dtype=np.int32)
        return cls(portrait, points, uv, triangles, len(points))

    def head_frame(
        self,
        yaw: float,
        pitch: float,
        eyes_closed: float = 0.0,
        shift: tuple[float, float] = (0, 0),
        mouth_open: float = 0.0,
    ) -> U8:
        """The head rotated in 3D (degrees) about a point behind the face, its eyes 0..1
        closed (a blink) and its mouth from -1 (lips shut) over 0 (the portrait's own mouth)
        to 1 (jaw dropped, mouth wide open)."""
        eyes_closed = min(max(eyes_closed, 0.0), 1.0)
        mouth_open = min(max(mouth_open, -1.0), 1.0)
        pts = self.mesh.copy()
        if eyes_closed > 0:
            pts[:, :2] += eyes_closed * _blink_shift(self.mesh)
        if mouth_open < 0:
            pts[:, :2] -= mouth_open * _lips_shift(self.mesh)
        cam = self._camera_points(pts, yaw, pitch, shift)
        frame = _render(self.portrait, self.uv, cam, self.triangles, self.portrait)
        if mouth_open > 0:
            jaw = mouth_open * _jaw_shift(self.mesh, self.uv, self.n_face)
            pts[:, :2] += jaw[: self.n_face]
            opened_cam = self._camera_points(pts, yaw, pitch, shift, jaw[self.n_face :])
            opened = _render(self.portrait, self.uv, opened_cam, self.triangles, self.portrait)
            frame = _mouth_opening(frame, opened, _project(cam), _project(opened_cam))
        if eyes_closed > 0:
            lids = _project(self._pose(pts, yaw, pitch, shift))
            creases = _project(self._pose(_creases(self.mesh), yaw, pitch, shift))
            frame = _paint_lids(frame, lids, creases, _smoothstep(eyes_closed))
        return frame

    def _pose(self, pts: F64, yaw: float, pitch: float, shift: tuple[float, float]) -> F64:
        """Points on the head (portrait pixels + depth) rotated and shifted, in camera space."""
        rest = self.mesh
        iod = float(np.linalg.norm(rest[MESH.left_eye_outer, :2] - rest[MESH.right_eye_outer, :2]))
        pivot = np.array([*rest[:, :2].mean(axis=0), rest[:, 2].mean() + 1.2 * iod])
        rotated = (pts - pivot) @ _rotation(yaw, pitch, 0.0).T + pivot
        rotated[:, :2] += shift
        # Camera space: pixel offsets from the image centre at depth FOCAL (scale 1 at z = 0).
        out: F64 = np.column_stack(
            [rotated[:, 0] - WIDTH / 2, rotated[:, 1] - HEIGHT / 2, FOCAL + rotated[:, 2]]
        )
        return out

    def _camera_points(
        self,
        pts: F64,
        yaw: float,
        pitch: float,
        shift: tuple[float, float],
        anchor_shift: F64 | None = None,
    ) -> F64:
        """The posed mesh points and the anchors (the static room), in camera space."""
        anchor_xy = self.uv[self.n_face :]
        if anchor_shift is not None:
            anchor_xy = anchor_xy + anchor_shift
        anchors = np.column_stack(
            [
                anchor_xy[:, 0] - WIDTH / 2,
                anchor_xy[:, 1] - HEIGHT / 2,
                np.full(len(anchor_xy), FOCAL),
            ]
        )
        out: F64 = np.vstack([self._pose(pts, yaw, pitch, shift), anchors])
        return out


# Inner lip contours of the MediaPipe mesh, from one mouth corner (78) to the other (308).
UPPER_INNER_LIP: Final = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER_LIP: Final = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LOWER_OUTER_LIP: Final = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
BLINK_CLOSED: Final = 0.95  # share of the eye opening the upper lid travels (lashes still meet)
JAW_DROP: Final = 0.4  # lower-lip drop at a full open mouth, in mouth widths (~2 cm)


def _aligned(points: F64, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> F64:
    """2D points in a frame with x along a -> b (origin a) and y perpendicular (image-down)."""
    axis = (b - a) / (np.linalg.norm(b - a) + 1e-9)
    normal = np.array([-axis[1], axis[0]])
    rel = points - a
    out: F64 = np.column_stack([rel @ axis, rel @ normal])
    return out


def _curve(local: F64, index: Sequence[int]) -> tuple[F64, F64]:
    """A lid or lip contour as (x, y) sorted by x, for np.interp."""
    pts = local[list(index)]
    order = np.argsort(pts[:, 0])
    return pts[order, 0], pts[order, 1]


def _blink_shift(mesh: F64) -> F64:
    """Per mesh point, the 2D shift that closes both eyes.

    The upper lid contour travels onto the lower lid; the lid skin above it follows less and
    less up to about half an eye width above (below the brow), so the warp stretches eyelid
    skin over the eye instead of stretching the dark lash line into an eye-shaped blob.
    """
    xy = mesh[:, :2]
    out = np.zeros_like(xy)
    for (outer, inner), upper, lower in (
        ((MESH.right_eye_outer, MESH.right_eye_inner), MESH.right_upper_lid, MESH.right_lower_lid),
        ((MESH.left_eye_inner, MESH.left_eye_outer), MESH.left_upper_lid, MESH.left_lower_lid),
    ):
        a, b = xy[outer], xy[inner]  # left to right in the image for both eyes
        local = _aligned(xy, a, b)
        width = float(local[inner, 0])
        ux, uy = _curve(local, (outer, *upper, inner))
        lx, ly = _curve(local, (outer, *lower, inner))
        x = local[:, 0]
        inside = (x > 0) & (x < width)
        lid_y = np.interp(x, ux, uy)
        opening = np.clip(np.interp(x, lx, ly) - lid_y, 0, None)
        above = lid_y - local[:, 1]  # >= 0 above the upper lid (image y grows down)
        reach = 0.45 * width
        follow = np.where(above >= -0.5, np.clip(1 - above / reach, 0, 1), 0.0)
        down = np.where(inside, BLINK_CLOSED * opening * follow, 0.0)
        axis = (b - a) / (np.linalg.norm(b - a) + 1e-9)
        normal = np.array([-axis[1], axis[0]])
        out += down[:, None] * normal[None, :]
    result: F64 = out
    return result


EYE_CONTOURS: Final = (
    (MESH.right_eye_outer, *MESH.right_upper_lid, MESH.right_eye_inner),
    (MESH.left_eye_inner, *MESH.left_upper_lid[::-1], MESH.left_eye_outer),
)  # each eye's upper lid from its image-left corner to its image-right corner
CREASE_HEIGHT: Final = 0.25  # lid crease above the lid margin, in eye widths


def _creases(mesh: F64) -> F64:
    """Both eyes' upper-lid contours (EYE_CONTOURS order) lifted to the lid crease, with depth."""
    out = []
    for contour in EYE_CONTOURS:
        pts = mesh[list(contour)].copy()
        a, b = pts[0, :2], pts[-1, :2]
        axis = (b - a) / (np.linalg.norm(b - a) + 1e-9)
        normal = np.array([-axis[1], axis[0]])  # image-down
        bulge = np.sin(np.linspace(0, math.pi, len(pts)))  # corners stay at the corners
        pts[:, :2] -= (CREASE_HEIGHT * float(np.linalg.norm(b - a)) * bulge)[:, None] * normal
        out.append(pts)
    result: F64 = np.vstack(out)
    return result


def _paint_lids(frame: U8, mesh_xy: F64, creases: F64, amount: float) -> U8:
    """Closed eyelids: between the lid crease and the lowered lid margin, lid skin (the colour
    just above the crease) fading out upwards, and a dark lash line along the margin."""
    out = frame.astype(np.float64)
    n = len(EYE_CONTOURS[0])
    for k, contour in enumerate(EYE_CONTOURS):
        margin = mesh_xy[list(contour)]
        crease = creases[k * n : (k + 1) * n]
        width = float(np.linalg.norm(margin[-1] - margin[0]))
        # Lid skin colour: a thin band above the crease (the warp leaves it as it was).
        band = np.zeros(frame.shape[:2], np.uint8)
        above = crease - np.array([0.0, 0.12 * width])
        cv2.fillPoly(band, [np.round(np.vstack([above, crease[::-1]])).astype(np.int32)], 1)
        if not band.any():
            continue
        skin = np.median(frame[band > 0].astype(np.float64), axis=0)
        lid = np.zeros(frame.shape[:2], np.uint8)
        poly = np.vstack([crease, margin[::-1]])
        cv2.fillPoly(lid, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        soft = cv2.GaussianBlur(lid, (0, 0), max(0.06 * width, 0.8)).astype(np.float64) / 255
        alpha = (amount * soft)[:, :, None]
        out = out * (1 - alpha) + skin * 0.96 * alpha
        lashes = np.zeros(frame.shape[:2], np.uint8)
        cv2.polylines(
            lashes, [np.round(margin * 16).astype(np.int32)], False, 255, 1, cv2.LINE_AA, shift=4
        )
        line = (amount * 0.85 * lashes.astype(np.float64) / 255)[:, :, None]
        out = out * (1 - line) + np.array([48.0, 36.0, 32.0]) * line
    result: U8 = np.clip(out, 0, 255).astype(np.uint8)
    return result


def _lips_shift(mesh: F64) -> F64:
    """Per mesh point, the 2D shift that shuts the portrait's parted lips: the lower lip rises
    onto the upper one (over the teeth), the skin below follows less and less to the chin."""
    xy = mesh[:, :2]
    right, left = xy[MESH.mouth_right], xy[MESH.mouth_left]
    mouth_width = float(np.linalg.norm(left - right))
    local = _aligned(xy, right, left)
    ux, uy = _curve(local, UPPER_INNER_LIP)
    lx, ly = _curve(local, LOWER_INNER_LIP)
    x, y = local[:, 0], local[:, 1]
    lower_lip = np.interp(x, lx, ly)
    gap = np.clip(lower_lip - np.interp(x, ux, uy), 0, None)
    below = y - lower_lip
    follow = np.where(below >= -0.5, np.clip(1 - below / (0.35 * mouth_width), 0, 1), 0.0)
    axis = (left - right) / (mouth_width + 1e-9)
    normal = np.array([-axis[1], axis[0]])
    out: F64 = (-gap * follow)[:, None] * normal[None, :]
    return out


def _jaw_shift(mesh: F64, uv: F64, n_face: int) -> F64:
    """Per vertex (mesh points, then anchors), the 2D shift of a full jaw drop.

    Everything below the upper inner lip moves down: the lower lip and chin by JAW_DROP mouth
    widths, less towards the mouth corners (they stay put, so the opening is lens-shaped) and
    towards the jaw's angles near the ears (close to the joint the jaw hardly moves). Anchors
    below the chin follow half-way, so the neck stretches instead of folding.
    """
    xy = mesh[:, :2]
    right, left = xy[MESH.mouth_right], xy[MESH.mouth_left]
    local = _aligned(uv, right, left)
    mouth_width = float(np.linalg.norm(left - right))
    mx, my = _curve(_aligned(xy, right, left), UPPER_INNER_LIP)
    x, y = local[:, 0], local[:, 1]
    centre = mouth_width / 2
    half_face = float(np.linalg.norm(xy[MESH.left_cheek] - xy[MESH.right_cheek])) / 2
    across = np.clip(np.abs(x - centre) / centre, 0, 1)  # 0 mid-mouth, 1 at the corners
    beyond = np.clip(np.abs(x - centre) - centre, 0, None)  # distance outside the corners
    below = y - np.interp(x, mx, my)
    # The lower lip moves whole in the middle; towards the corners the skin stretches over
    # a longer way, so the opening is an oval and the corners stay put.
    ramp = mouth_width * (0.1 + 0.3 * across**2) + beyond
    vertical = np.clip(below / ramp, 0, 1)
    vertical = vertical * vertical * (3 - 2 * vertical)  # smoothstep
    lateral = np.clip(1 - 0.75 * beyond / max(half_face - centre, 1.0), 0.25, 1.0)
    drop = JAW_DROP * mouth_width * vertical * lateral
    drop[n_face:] *= 0.5
    axis = (left - right) / (mouth_width + 1e-9)
    normal = np.array([-axis[1], axis[0]])
    out: F64 = drop[:, None] * normal[None, :]
    return out


def _project(cam: F64) -> F64:
    z = np.maximum(cam[:, 2], 1.0)
    out: F64 = np.column_stack(
        [WIDTH / 2 + FOCAL * cam[:, 0] / z, HEIGHT / 2 + FOCAL * cam[:, 1] / z]
    )
    return out


def _mouth_opening(closed: U8, opened: U8, rest: F64, moved: F64) -> U8:
    """Paint the open mouth: the upper teeth (the closed render's inner mouth, attached to the
    upper lip), a dark oral cavity with the tongue at its floor, the lower teeth's edges just
    above the dropped lower lip, and that lip a little redder (it reads as lip, not skin)."""
    upper = moved[list(UPPER_INNER_LIP)]
    teeth_edge = rest[list(LOWER_INNER_LIP)]
    lower = moved[list(LOWER_INNER_LIP)]

    def mask(points: F64, blur: float = 0.7) -> F64:
        m = np.zeros((HEIGHT, WIDTH), np.uint8)
        cv2.fillPoly(m, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        soft: F64 = cv2.GaussianBlur(m, (0, 0), blur).astype(np.float64)[:, :, None] / 255.0
        return soft

    opening = mask(np.vstack([upper, lower[::-1]]))
    teeth = np.minimum(mask(np.vstack([upper, teeth_edge[::-1]])), opening)
    drop = np.clip(lower[:, 1] - teeth_edge[:, 1], 0, None)
    lower_teeth_top = lower - np.column_stack([np.zeros(len(lower)), 0.3 * drop])
    lower_teeth = np.minimum(mask(np.vstack([lower_teeth_top, lower[::-1]])), opening)
    lip = mask(np.vstack([lower, moved[list(LOWER_OUTER_LIP)][::-1]]), 1.0)
    top, bottom = float(teeth_edge[:, 1].min()), float(lower[:, 1].max())
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    centre_x = float(lower[:, 0].mean())
    half_width = 0.3 * float(lower[:, 0].max() - lower[:, 0].min()) + 1.0
    tongue_d = ((xx - centre_x) / half_width) ** 2 + (
        (yy - bottom) / (0.5 * (bottom - top) + 1)
    ) ** 2
    tongue = np.clip((1.0 - tongue_d) * 2, 0, 1)[:, :, None]
    cavity = np.array([30.0, 12.0, 12.0]) * (1 - tongue) + np.array([150.0, 60.0, 65.0]) * tongue
    out = opened * (1 - 0.5 * lip) + np.array([175.0, 85.0, 90.0]) * 0.5 * lip
    out = out * (1 - opening) + cavity * np.clip(opening - teeth, 0, 1) + closed * teeth
    out = out * (1 - lower_teeth) + np.array([215.0, 205.0, 190.0]) * lower_teeth
    result: U8 = np.clip(out, 0, 255).astype(np.uint8)
    return result


def _hold(
    photo: U8,
    background: U8,
    *,
    yaw: float,
    pitch: float,
    roll: float,
    distance: float,
    shift: tuple[float, float],
    bend: float,
    uv_tris: tuple[F64, npt.NDArray[np.int32]],
) -> U8:
    """The photo as a plane (or a cylinder, curvature `bend` in 1/px) held before the camera."""
    uv, tris = uv_tris
    h, w = photo.shape[:2]
    x = uv[:, 0] - w / 2
    y = uv[:, 1] - h / 2
    z = np.zeros_like(x)
    if bend > 0:
        r = 1.0 / bend
        x, z = r * np.sin(x / r), -r * (1 - np.cos(x / r))  # edges curl towards the camera
    local = np.column_stack([x, y, z]) @ _rotation(yaw, pitch, roll).T
    cam = local + np.array([shift[0], shift[1], distance])
    return _render(photo, uv, cam, tris, background)


SCREEN_PITCH = 3  # texture px per screen pixel (the grid the camera resolves, just)
HALFTONE_PITCH = 5.0  # texture px per halftone cell, screen at 45 degrees
CAMERA_BLUR = 0.6  # Gaussian sigma (px) of the camera's optics on attack frames


def _pixel_grid(img: F64) -> F64:
    """A phone screen's pixels: RGB sub-pixel stripes and dark gaps between pixel rows."""
    h, w = img.shape[:2]
    cols = np.arange(w) % SCREEN_PITCH
    rows = np.arange(h) % SCREEN_PITCH
    stripes = np.full((w, 3), 0.8)
    for c in range(3):
        stripes[cols == c, c] = 1.25  # each column lights one sub-pixel colour brightest
    gap = np.where(rows == SCREEN_PITCH - 1, 0.6, 1.0)
    out: F64 = img * stripes[None, :, :] * gap[:, None, None]
    return out


def _glare(img: F64, centre: tuple[float, float], radius: float) -> F64:
    """A lamp's specular reflection on glass: a soft white blob added on top."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 * 2.5) / radius**2
    out: F64 = img + 320.0 * np.exp(-d2)[:, :, None]
    return out


def _halftone(img: F64) -> F64:
    """Amplitude-modulated halftone (one dot screen at 45 degrees) and a print's duller gamut."""
    h, w = img.shape[:2]
    grey = img.mean(axis=2, keepdims=True)
    dull = grey + 0.7 * (img - grey)  # inks cover less gamut than a camera sees
    dull = 18 + dull * (225 - 18) / 255  # paper white and ink black: lower contrast
    yy, xx = np.mgrid[0:h, 0:w]
    u = (xx + yy) / math.sqrt(2) * 2 * math.pi / HALFTONE_PITCH
    v = (xx - yy) / math.sqrt(2) * 2 * math.pi / HALFTONE_PITCH
    screen = (np.cos(u) + np.cos(v)) / 4 + 0.5  # 0..1 dot profile
    coverage = 1.0 - dull / 255.0  # ink needed
    ink = np.clip((coverage - screen[:, :, None]) * 4 + 0.5, 0, 1)  # soft-edged dots
    out: F64 = 240.0 * (1 - ink) + 8.0 * ink  # paper white where no ink
    # Colour: the dots carry the (dulled) hue.
    tint = dull / np.maximum(grey * (225 - 18) / 255 + 18, 1.0)
    out = out * np.clip(tint, 0.6, 1.4)
    return out


def _framed(portrait: U8, kind: str, glare_at: tuple[float, float] = (0.78, 0.2)) -> U8:
    """The portrait's head-and-shoulders cut as a print (halftone, paper border) or a phone
    screen (pixel grid, dark bezel with a light rim, a glare spot)."""
    face = portrait[40:440, 120:520].astype(np.float64)  # 400x400 around the face
    if kind == "screen":
        lit = _pixel_grid(face * [0.95, 1.0, 1.12] * 1.08 + 6)
        lit = _glare(lit, (glare_at[0] * 400, glare_at[1] * 400), 45.0)
        pad = 18
        out = np.full((400 + 2 * pad, 400 + 2 * pad + 10, 3), 12, dtype=np.uint8)
        out[:3, :] = out[-3:, :] = 190  # the phone's metal rim
        out[:, :3] = out[:, -3:] = 190
        out[pad : pad + 400, pad + 5 : pad + 405] = np.clip(lit, 0, 255).astype(np.uint8)
        return out
    pad = 24
    out = np.full((400 + 2 * pad, 400 + 2 * pad, 3), 236, dtype=np.uint8)
    out[pad : pad + 400, pad : pad + 400] = np.clip(_halftone(face), 0, 255).astype(np.uint8)
    return out


def _camera(frame: U8) -> U8:
    out: U8 = np.asarray(cv2.GaussianBlur(frame, (0, 0), CAMERA_BLUR), np.uint8)
    return out


def attack_clip(
    kit: SceneKit, kind: str, *, seed: int = 0, fps: float = 15.0, seconds: float = 3.0
) -> Clip:
    """One presentation attack of `kind` (see ATTACK_KINDS), deterministic for a seed."""
    if kind not in ATTACK_KINDS:
        raise ValueError(f"unknown attack kind {kind!r}; expected one of {ATTACK_KINDS}")
    rng = np.random.default_rng(seed)
    medium, motion = kind.split("_")
    photo = _framed(kit.portrait, medium)
    background = _background(seed + 1)
    uv_tris = _grid(photo.shape[1], photo.shape[0], 14)
    n = round(fps * seconds)
    frames = []
    base_distance = FOCAL * 1.05
    jitter = rng.normal(0, 1, (n, 5)).cumsum(axis=0) * 0.15  # slow hand drift
    for i in range(n):
        phase = 2 * math.pi * i / n
        yaw, pitch, roll = jitter[i, 0], jitter[i, 1], jitter[i, 2] * 0.5
        shift = (jitter[i, 3] * 2, jitter[i, 4] * 2)
        distance, bend = base_distance, 0.0
        if motion == "tilt":
            yaw += 35 * math.sin(phase)
            pitch += 8 * math.sin(2 * phase)
        elif motion == "sway":
            shift = (shift[0] + 60 * math.sin(phase), shift[1] + 20 * math.sin(2 * phase))
            distance *= 1 + 0.25 * math.sin(phase)
            roll += 12 * math.sin(phase)
            yaw += 15 * math.sin(2 * phase)
        elif motion == "bent":
            bend = 1 / 260.0
            yaw += 30 * math.sin(phase)
        frames.append(
            _camera(
                _hold(
                    photo,
                    background,
                    yaw=yaw,
                    pitch=pitch,
                    roll=roll,
                    distance=distance,
                    shift=shift,
                    bend=bend,
                    uv_tris=uv_tris,
                )
            )
        )
    return Clip.from_arrays(frames, [i / fps for i in range(n)], source=f"synthetic:{kind}")


Pose = tuple[float, ...]  # yaw, pitch, eyes_closed[, mouth_open]


def _turns(t: float) -> Pose:
    return (28 * math.sin(2 * math.pi * t / 3.0), 0.0, 0.0)


def _nod_and_turn(t: float) -> Pose:
    return (20 * math.sin(2 * math.pi * t / 3.0), 12 * math.sin(2 * math.pi * t / 1.5), 0.0)


def _bump(t: float, start: float, end: float) -> float:
    """0 outside [start, end], a smooth 0 -> 1 -> 0 bump inside."""
    if not start < t < end:
        return 0.0
    return math.sin(math.pi * (t - start) / (end - start)) ** 2


BLINK_CLOSING_S, BLINK_CLOSED_S, BLINK_OPENING_S = 0.08, 0.10, 0.10  # 0.28 s in all


def _blink(t: float, centre: float) -> float:
    """Eyelid closure 0..1 of one blink centred at `centre`: it closes, stays shut long enough
    for a 15 fps camera to catch one closed frame, and reopens a little slower."""
    half = BLINK_CLOSED_S / 2
    if t < centre - half:
        return _smoothstep((t - (centre - half - BLINK_CLOSING_S)) / BLINK_CLOSING_S)
    if t <= centre + half:
        return 1.0
    return _smoothstep(1 - (t - (centre + half)) / BLINK_OPENING_S)


def challenge_motion(
    actions: Sequence[str], windows: Sequence[tuple[float, float]]
) -> Callable[[float], Pose]:
    """A pose track that performs each action in the middle of its window: turns and nods
    over most of the window, one quick blink (0.28 s), the mouth held open for about 1 s.
    When the mouth is to open, the head rests with its lips shut (as most people do), so the
    opening starts from a closed mouth, not from the portrait's parted smile."""
    rest_mouth = -1.0 if "open_mouth" in actions else 0.0

    def pose(t: float) -> Pose:
        yaw = pitch = eyes = 0.0
        mouth = rest_mouth
        for action, (start, end) in zip(actions, windows, strict=True):
            mid = (start + end) / 2
            half = (end - start) * 0.35
            b = _bump(t, mid - half, mid + half)
            # Renderer yaw < 0 moves the nose to image right: the subject's left, as a
            # (non-mirrored) camera sees it; see liveness.landmarks for the measured signs.
            if action == "turn_left":
                yaw -= 30 * b
            elif action == "turn_right":
                yaw += 30 * b
            elif action == "look_up":
                pitch -= 22 * b
            elif action == "blink":
                eyes = max(eyes, _blink(t, mid))
            elif action == "open_mouth":
                mouth = max(mouth, rest_mouth + (1.0 - rest_mouth) * min(1.0, 2.0 * b))
        return (yaw, pitch, eyes, mouth)

    return pose


def bona_fide_clip(
    kit: SceneKit,
    kind: str = "turns",
    *,
    fps: float = 15.0,
    seconds: float = 3.0,
    motion: Callable[[float], Pose] | None = None,
    seed: int = 0,
) -> Clip:
    """A 3D head (the portrait's mesh with depth) turning; `motion` overrides the kind's track
    (yaw, pitch, eyes closed[, mouth open] per time in seconds)."""
    if motion is None:
        if kind == "turns":
            motion = _turns
        elif kind == "nod_and_turn":
            motion = _nod_and_turn
        else:
            raise ValueError(f"kind {kind!r} needs an explicit motion (see challenge_motion)")
    rng = np.random.default_rng(seed)
    n = round(fps * seconds)
    drift = rng.normal(0, 0.6, (n, 2)).cumsum(axis=0)
    frames = []
    for i in range(n):
        yaw, pitch, eyes, *rest = motion(i / fps)
        frames.append(
            kit.head_frame(
                yaw,
                pitch,
                eyes,
                shift=(float(drift[i, 0]), float(drift[i, 1])),
                mouth_open=rest[0] if rest else 0.0,
            )
        )
    return Clip.from_arrays(frames, [i / fps for i in range(n)], source=f"synthetic:{kind}")


def replay_clip(kit: SceneKit, recording: Clip, *, seed: int = 0) -> Clip:
    """`recording` replayed on a phone screen held in front of the camera (hand jitter)."""
    rng = np.random.default_rng(seed)
    background = _background(seed + 1)
    n = len(recording.frames)
    jitter = rng.normal(0, 1, (n, 5)).cumsum(axis=0) * 0.15
    frames = []
    uv_tris: tuple[F64, npt.NDArray[np.int32]] | None = None
    for i, shown in enumerate(recording.frames):
        photo = _framed(np.asarray(shown), "screen")
        uv_tris = uv_tris or _grid(photo.shape[1], photo.shape[0], 14)
        frames.append(
            _camera(
                _hold(
                    photo,
                    background,
                    yaw=float(jitter[i, 0]),
                    pitch=float(jitter[i, 1]),
                    roll=float(jitter[i, 2]) * 0.5,
                    distance=FOCAL * 1.05,
                    shift=(float(jitter[i, 3]) * 2, float(jitter[i, 4]) * 2),
                    bend=0.0,
                    uv_tris=uv_tris,
                )
            )
        )
    return Clip.from_arrays(frames, list(recording.timestamps), source="synthetic:replay")


def encode_video(clip: Clip, fmt: str = "mp4", codec: str = "mpeg4") -> bytes:
    """A clip as a video file in memory (PyAV; MPEG-4 part 2 in MP4 by default), with one
    timestamp per frame at the clip's rate: what a capture client would upload."""
    import io
    from fractions import Fraction

    import av

    fps = round(clip.fps)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=fps)  # a VideoStream; PyAV types a union
        stream.width, stream.height = clip.size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"qscale": "3"} if codec == "mpeg4" else {}
        for i, pixels in enumerate(clip.frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(pixels), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()
