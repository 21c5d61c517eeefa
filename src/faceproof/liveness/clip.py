"""Clip intake: a video file (decoded by content with PyAV), a folder of frames, or uploaded
frames with their timestamps (`decode_frames`), in memory.

A `Clip` is the one type every liveness check takes: read-only RGB uint8 frames of one size and
their timestamps in seconds from the first frame. Frames are never written anywhere. Limits are
checked before and while decoding (bytes, resolution, duration, frame count), and every frame is
shrunk so its long side is at most `ClipLimits.max_side_out` pixels.

Timestamps are kept as the source gives them (video presentation times, or a folder's
`timestamps.json`/`timestamps.csv`): the clip does not require them to be increasing, because
duplicated or reordered times are evidence that the timing check (`liveness.engine`) reports as
`frame_timing`. They must be finite.

Uploaded frames (`decode_frames`, the API's frames route) are stricter: the client sends them in
capture order with its own timestamps, so timestamps that are not strictly increasing are a
client error (`frames_out_of_order`), refused before anything is decoded, like a count mismatch
or a timestamp that is not a finite number (`frames_malformed`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.capture import ImageLimits, decode_image, load_image
from faceproof.errors import FaceproofError, InputError
from faceproof.reasons import ReasonCode

__all__ = [
    "DEFAULT_CLIP_LIMITS",
    "FRAME_FORMATS",
    "Clip",
    "ClipError",
    "ClipLimits",
    "decode_clip",
    "decode_frames",
    "load_clip",
    "parse_timestamps_ms",
]

_MIB = 1024 * 1024
_IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic"})
_TIMESTAMP_FILES: Final = ("timestamps.json", "timestamps.csv")
# Uploaded frames: still formats a browser or phone SDK encodes quickly (no HEIC).
FRAME_FORMATS: Final = frozenset({"jpeg", "png", "webp"})


class ClipError(InputError):
    """A clip cannot be used: corrupt, too short or too long (reason code says which)."""


@dataclass(frozen=True, slots=True)
class ClipLimits:
    """What a clip may cost us. Durations in seconds; sides in pixels."""

    max_bytes: int = 64 * _MIB
    max_duration_s: float = 15.0
    max_frames: int = 600  # 15 s at 40 fps
    max_input_pixels: int = 4096 * 2160  # per frame, checked from the stream header
    max_side_out: int = 640  # frames are shrunk to this long side
    min_frames: int = 2
    min_duration_s: float = 1.0
    assumed_fps: float = 15.0  # for a folder of frames without timestamps

    def __post_init__(self) -> None:
        if self.max_duration_s <= 0 or self.max_frames < 2 or self.max_side_out < 64:
            raise ValueError("ClipLimits: need max_duration_s > 0, max_frames >= 2, side >= 64")
        if self.min_frames < 1 or self.min_duration_s < 0 or self.assumed_fps <= 0:
            raise ValueError("ClipLimits: need min_frames >= 1, min_duration_s >= 0, fps > 0")


DEFAULT_CLIP_LIMITS = ClipLimits()


@dataclass(frozen=True, slots=True, eq=False)
class Clip:
    """Frames (read-only HxWx3 uint8 RGB, all one size) and timestamps in seconds."""

    frames: tuple[npt.NDArray[np.uint8], ...]
    timestamps: tuple[float, ...]
    source: str = "memory"  # "video:<codec>", "frames" or "memory"; never a path or pixels

    def __post_init__(self) -> None:
        if len(self.frames) != len(self.timestamps):
            raise ValueError(
                f"Clip: {len(self.frames)} frames but {len(self.timestamps)} timestamps"
            )
        shape: tuple[int, ...] | None = None
        for frame in self.frames:
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError("Clip: every frame must be a uint8 array of shape (H, W, 3)")
            if frame.flags.writeable:
                raise ValueError("Clip: frames must be read-only (flags.writeable = False)")
            if shape is not None and frame.shape != shape:
                raise ValueError(f"Clip: frame of shape {frame.shape}, expected {shape}")
            shape = frame.shape
        if not all(math.isfinite(t) for t in self.timestamps):
            raise ValueError("Clip: timestamps must be finite")

    def __repr__(self) -> str:
        return f"Clip(frames={len(self.frames)}, size={self.size}, duration={self.duration:.2f}s)"

    @classmethod
    def from_arrays(
        cls,
        frames: list[npt.NDArray[np.uint8]] | tuple[npt.NDArray[np.uint8], ...],
        timestamps: list[float] | tuple[float, ...],
        source: str = "memory",
    ) -> Clip:
        """Copy frames into read-only arrays (for generated clips and tests)."""
        owned = []
        for frame in frames:
            arr = np.array(frame, dtype=np.uint8, copy=True, order="C")
            arr.flags.writeable = False
            owned.append(arr)
        return cls(tuple(owned), tuple(float(t) for t in timestamps), source)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height); (0, 0) for an empty clip."""
        if not self.frames:
            return (0, 0)
        h, w = self.frames[0].shape[:2]
        return (int(w), int(h))

    @property
    def duration(self) -> float:
        if len(self.timestamps) < 2:
            return 0.0
        return float(max(self.timestamps) - min(self.timestamps))

    @property
    def fps(self) -> float:
        d = self.duration
        return (len(self.frames) - 1) / d if d > 0 else 0.0


def load_clip(
    source: str | os.PathLike[str] | bytes, limits: ClipLimits = DEFAULT_CLIP_LIMITS
) -> Clip:
    """A video file, video bytes, or a folder of frames -> a checked `Clip`, or a ClipError."""
    if isinstance(source, bytes):
        return decode_clip(source, limits)
    path = Path(source)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ClipError(ReasonCode.CLIP_CORRUPT, "The clip path cannot be read.") from exc
    if stat.S_ISDIR(st.st_mode):
        return _load_folder(path, limits)
    if not stat.S_ISREG(st.st_mode):
        raise ClipError(ReasonCode.CLIP_CORRUPT, "The clip path is not a file or folder.")
    if st.st_size > limits.max_bytes:
        raise ClipError(
            ReasonCode.CLIP_TOO_LONG,
            f"The clip file is {st.st_size} bytes; the limit is {limits.max_bytes} bytes.",
            size_bytes=st.st_size,
            max_bytes=limits.max_bytes,
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ClipError(ReasonCode.CLIP_CORRUPT, "The clip file cannot be read.") from exc
    return decode_clip(data, limits)


def decode_clip(data: bytes, limits: ClipLimits = DEFAULT_CLIP_LIMITS) -> Clip:
    """Decode a video (webm, mp4, mov, ...; container found by content) from memory."""
    if not data:
        raise ClipError(ReasonCode.CLIP_CORRUPT, "The clip is empty.")
    if len(data) > limits.max_bytes:
        raise ClipError(
            ReasonCode.CLIP_TOO_LONG,
            f"The clip is {len(data)} bytes; the limit is {limits.max_bytes} bytes.",
            size_bytes=len(data),
            max_bytes=limits.max_bytes,
        )
    import av

    frames: list[npt.NDArray[np.uint8]] = []
    times: list[float] = []
    codec = "unknown"
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            streams = container.streams.video
            if not streams:
                raise ClipError(ReasonCode.CLIP_CORRUPT, "The file holds no video stream.")
            stream = streams[0]
            codec = str(stream.codec_context.name)
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            if width * height > limits.max_input_pixels:
                raise ClipError(
                    ReasonCode.CLIP_CORRUPT,
                    f"The video is {width}x{height}; at most {limits.max_input_pixels} pixels "
                    "per frame are accepted.",
                    width=width,
                    height=height,
                )
            _check_declared_duration(container, stream, limits)
            rate = float(stream.average_rate) if stream.average_rate else limits.assumed_fps
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / rate
                times.append(t)
                if len(times) > limits.max_frames or t - times[0] > limits.max_duration_s:
                    raise _too_long(len(times), t - times[0], limits)
                if frame.width * frame.height > limits.max_input_pixels:
                    raise ClipError(ReasonCode.CLIP_CORRUPT, "A frame exceeds the pixel limit.")
                rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                frames.append(_shrink(rgb, limits.max_side_out))
    except FaceproofError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # the trust boundary: PyAV/FFmpeg raise many types
        raise ClipError(
            ReasonCode.CLIP_CORRUPT, "The video cannot be decoded.", cause=type(exc).__name__
        ) from exc
    if frames and any(f.shape != frames[0].shape for f in frames):
        raise ClipError(ReasonCode.CLIP_CORRUPT, "The video changes resolution mid-stream.")
    t0 = times[0] if times else 0.0
    return _checked(frames, [t - t0 for t in times], f"video:{codec}", limits)


def _check_declared_duration(container: Any, stream: Any, limits: ClipLimits) -> None:
    """Refuse a 10-minute video from its header, before decoding a single frame."""
    declared: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared = container.duration / 1_000_000  # AV_TIME_BASE
    if declared is not None and declared > limits.max_duration_s + 0.5:
        raise _too_long(None, declared, limits)
    if stream.frames and int(stream.frames) > limits.max_frames:
        raise _too_long(int(stream.frames), declared, limits)


def _too_long(frames: int | None, seconds: float | None, limits: ClipLimits) -> ClipError:
    return ClipError(
        ReasonCode.CLIP_TOO_LONG,
        f"The clip is longer than {limits.max_duration_s:g} s or {limits.max_frames} frames.",
        **({"frames": frames} if frames is not None else {}),
        **({"seconds": round(seconds, 2)} if seconds is not None else {}),
        max_duration_s=limits.max_duration_s,
        max_frames=limits.max_frames,
    )


def _shrink(rgb: npt.NDArray[np.uint8], max_side: int) -> npt.NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    out = np.ascontiguousarray(rgb, dtype=np.uint8)
    out.flags.writeable = False
    return out


def _checked(
    frames: list[npt.NDArray[np.uint8]], times: list[float], source: str, limits: ClipLimits
) -> Clip:
    clip = Clip(tuple(frames), tuple(times), source)
    if len(frames) < limits.min_frames or clip.duration < limits.min_duration_s:
        raise ClipError(
            ReasonCode.CLIP_TOO_SHORT,
            f"The clip has {len(frames)} frames over {clip.duration:.2f} s; at least "
            f"{limits.min_frames} frames and {limits.min_duration_s:g} s are needed.",
            frames=len(frames),
            seconds=round(clip.duration, 2),
        )
    if clip.duration > limits.max_duration_s:
        raise _too_long(len(frames), clip.duration, limits)
    return clip


def _load_folder(folder: Path, limits: ClipLimits) -> Clip:
    """Images in name order; timestamps from timestamps.json / timestamps.csv, else assumed fps.

    `timestamps.json` is a list of seconds (one per image, in name order) or an object mapping
    file name to seconds; `timestamps.csv` has rows `file,seconds` (a header row is allowed).
    """
    try:
        names = sorted(
            entry.name
            for entry in folder.iterdir()
            if entry.is_file()
            and not entry.name.startswith(".")
            and entry.suffix.lower() in _IMAGE_SUFFIXES
        )
    except OSError as exc:
        raise ClipError(ReasonCode.CLIP_CORRUPT, "The frame folder cannot be read.") from exc
    if len(names) > limits.max_frames:
        raise _too_long(len(names), None, limits)
    times = _folder_timestamps(folder, names, limits)
    frames: list[npt.NDArray[np.uint8]] = []
    for name in names:
        try:
            image = load_image(folder / name)
        except FaceproofError as exc:
            raise ClipError(
                ReasonCode.CLIP_CORRUPT,
                f"Frame {name!r} is not a usable image ({exc.code.value}).",
                frame=name,
                cause=exc.code.value,
            ) from exc
        frames.append(_shrink(image.pixels, limits.max_side_out))
    if frames and any(f.shape != frames[0].shape for f in frames):
        raise ClipError(ReasonCode.CLIP_CORRUPT, "The frames are not all the same size.")
    t0 = times[0] if times else 0.0
    return _checked(frames, [t - t0 for t in times], "frames", limits)


def _folder_timestamps(folder: Path, names: list[str], limits: ClipLimits) -> list[float]:
    json_path, csv_path = (folder / n for n in _TIMESTAMP_FILES)
    try:
        if json_path.is_file():
            raw = json.loads(json_path.read_text(encoding="utf-8"))
            if isinstance(raw, list):
                values = [float(v) for v in raw]
            elif isinstance(raw, dict):
                values = [float(raw[n]) for n in names]
            else:
                raise ValueError("timestamps.json must be a list or an object")
        elif csv_path.is_file():
            table: dict[str, float] = {}
            with csv_path.open(newline="", encoding="utf-8") as fh:
                for row in csv.reader(fh):
                    if len(row) < 2 or not row[0].strip():
                        continue
                    try:
                        table[row[0].strip()] = float(row[1])
                    except ValueError:
                        if table:  # only the first row may be a header
                            raise
            values = [table[n] for n in names]
        else:
            return [i / limits.assumed_fps for i in range(len(names))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClipError(
            ReasonCode.CLIP_CORRUPT, "The frame timestamps file is invalid or incomplete."
        ) from exc
    if len(values) != len(names) or not all(math.isfinite(v) for v in values):
        raise ClipError(
            ReasonCode.CLIP_CORRUPT,
            f"{len(values)} timestamps for {len(names)} frames, or a non-finite value.",
        )
    return values


# --- uploaded frames -------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def parse_timestamps_ms(text: str) -> list[float]:
    """A JSON array of numbers (milliseconds) -> floats, or ClipError `frames_malformed`.

    NaN, Infinity, booleans, strings and nested values are refused; so is a number too large
    for a float (1e999). Order is checked by `decode_frames`, not here."""
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ClipError(
            ReasonCode.FRAMES_MALFORMED, "timestamps must be a JSON array of numbers."
        ) from exc
    if not isinstance(raw, list):
        raise ClipError(ReasonCode.FRAMES_MALFORMED, "timestamps must be a JSON array of numbers.")
    values: list[float] = []
    for index, value in enumerate(raw):
        # bool is an int subclass: `true` is not a timestamp.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ClipError(
                ReasonCode.FRAMES_MALFORMED,
                f"timestamps[{index}] is not a number.",
                index=index,
            )
        try:
            number = float(value)
        except OverflowError as exc:  # an integer beyond a float
            raise ClipError(
                ReasonCode.FRAMES_MALFORMED, f"timestamps[{index}] is out of range.", index=index
            ) from exc
        if not math.isfinite(number):  # 1e999 parses as inf
            raise ClipError(
                ReasonCode.FRAMES_MALFORMED, f"timestamps[{index}] is out of range.", index=index
            )
        values.append(number)
    return values


def decode_frames(
    parts: Sequence[bytes],
    timestamps_ms: Sequence[float],
    limits: ClipLimits = DEFAULT_CLIP_LIMITS,
) -> Clip:
    """Encoded still frames (JPEG, PNG or WebP, in capture order) and their timestamps in
    milliseconds -> a checked `Clip` (timestamps in seconds from the first frame), or ClipError.

    The cheap checks come first, before any pixel is decoded: one finite timestamp per frame
    (`frames_malformed`), frame count and span (`clip_too_long`, `clip_too_short`), strictly
    increasing timestamps (`frames_out_of_order`), total bytes (`clip_too_long`). Then each frame
    goes through `capture.decode_image` (format by content, header pixel limits, decompression
    bombs, corrupt or truncated data: the image's own code, with the frame's index) and must
    have the first frame's size (`frames_malformed`). Frames are shrunk like video frames.
    """
    count = len(parts)
    if len(timestamps_ms) != count:
        raise ClipError(
            ReasonCode.FRAMES_MALFORMED,
            f"{count} frames but {len(timestamps_ms)} timestamps; send one per frame.",
            frames=count,
            timestamps=len(timestamps_ms),
        )
    if count > limits.max_frames:
        raise _too_long(count, None, limits)
    for index, t in enumerate(timestamps_ms):
        if not math.isfinite(t):
            raise ClipError(
                ReasonCode.FRAMES_MALFORMED,
                f"timestamps[{index}] is not a finite number.",
                index=index,
            )
    for index in range(1, count):
        if not timestamps_ms[index] > timestamps_ms[index - 1]:
            raise ClipError(
                ReasonCode.FRAMES_OUT_OF_ORDER,
                f"timestamps[{index}] is not after timestamps[{index - 1}]; timestamps must "
                "increase strictly, in capture order.",
                index=index,
            )
    t0 = timestamps_ms[0] if count else 0.0
    seconds = [(t - t0) / 1000.0 for t in timestamps_ms]
    span = seconds[-1] if seconds else 0.0
    if span > limits.max_duration_s:
        raise _too_long(count, span, limits)
    if count < limits.min_frames or span < limits.min_duration_s:
        raise ClipError(
            ReasonCode.CLIP_TOO_SHORT,
            f"{count} frames over {span:.2f} s; at least {limits.min_frames} frames and "
            f"{limits.min_duration_s:g} s are needed.",
            frames=count,
            seconds=round(span, 2),
        )
    total = sum(len(part) for part in parts)
    if total > limits.max_bytes:
        raise ClipError(
            ReasonCode.CLIP_TOO_LONG,
            f"The frames are {total} bytes; the limit is {limits.max_bytes} bytes.",
            size_bytes=total,
            max_bytes=limits.max_bytes,
        )
    image_limits = ImageLimits(max_bytes=limits.max_bytes, max_pixels=limits.max_input_pixels)
    frames: list[npt.NDArray[np.uint8]] = []
    first_size: tuple[int, int] | None = None
    for index, part in enumerate(parts):
        try:
            image = decode_image(part, image_limits)
        except FaceproofError as exc:
            raise ClipError(
                exc.code,
                f"Frame {index} is not a usable image: {exc.detail}",
                frame=index,
                **{k: v for k, v in exc.context.items() if k in ("format", "cause")},
            ) from exc
        if image.format not in FRAME_FORMATS:
            raise ClipError(
                ReasonCode.IMAGE_UNSUPPORTED_FORMAT,
                f"Frame {index} is {image.format.upper()}; frames must be JPEG, PNG or WebP.",
                frame=index,
                format=image.format,
            )
        if first_size is None:
            first_size = (image.width, image.height)
        elif (image.width, image.height) != first_size:
            raise ClipError(
                ReasonCode.FRAMES_MALFORMED,
                f"Frame {index} is {image.width}x{image.height}; frame 0 is "
                f"{first_size[0]}x{first_size[1]}: every frame must have the same size.",
                frame=index,
            )
        frames.append(_shrink(image.pixels, limits.max_side_out))
        del image
    return _checked(frames, seconds, "frames", limits)
