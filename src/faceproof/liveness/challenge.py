"""Random challenges: 2-4 actions with time windows, bound to a session nonce, signed, expiring.

The server draws a `Challenge` (`ChallengeIssuer.issue`), hands its `spec` string to the
capture page, and later verifies the spec that comes back with the clip
(`ChallengeIssuer.verify`): an HMAC-SHA256 over the payload proves this service issued it
(`challenge_unknown` otherwise, compared in constant time), and the clock decides whether it is
still valid (`challenge_expired`). Clock and randomness are injected, so tests are
deterministic. Single use is the caller's job (`verify(..., consume=True)` keeps an in-memory
set per issuer; a multi-process service needs a shared store).

Spec string: ``v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "v1." + payload))>``.
Payload: nonce, session, actions, windows (seconds from the clip's first frame), issued_at
and expires_at (Unix seconds).

`follow_actions` checks a clip's per-frame measurements against the actions: each action must
reach its threshold (relative to the clip's neutral start) inside its window, in order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from faceproof.errors import InputError
from faceproof.reasons import ReasonCode

__all__ = [
    "ACTIONS",
    "HEAD_MOVES",
    "ActionCheck",
    "ActionThresholds",
    "Challenge",
    "ChallengeError",
    "ChallengeIssuer",
    "FrameMeasures",
    "follow_actions",
]

ACTIONS: Final = ("turn_left", "turn_right", "look_up", "blink", "open_mouth")
# Every challenge has at least one: the parallax check (what tells a head from a photo) needs
# the head to move, so a challenge of blinks and mouth openings alone would fail a person who
# keeps still (`motion_insufficient`); it was 10 % of two-action draws.
HEAD_MOVES: Final = ("turn_left", "turn_right", "look_up")
_VERSION: Final = "v1"


class ChallengeError(InputError):
    """A challenge spec was not issued by this service, was tampered with, or has expired."""


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: str
    session: str
    actions: tuple[str, ...]
    windows: tuple[tuple[float, float], ...]  # seconds from the clip's first frame
    issued_at: float
    expires_at: float

    def __post_init__(self) -> None:
        if not 1 <= len(self.actions) <= 4 or len(self.actions) != len(self.windows):
            raise ValueError("Challenge: 1-4 actions, one window each")
        if any(a not in ACTIONS for a in self.actions):
            raise ValueError(f"Challenge: actions must be among {ACTIONS}")
        if any(not 0 <= s < e for s, e in self.windows):
            raise ValueError("Challenge: each window needs 0 <= start < end")

    def payload(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce,
            "session": self.session,
            "actions": list(self.actions),
            "windows": [[round(s, 3), round(e, 3)] for s, e in self.windows],
            "issued_at": round(self.issued_at, 3),
            "expires_at": round(self.expires_at, 3),
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class ChallengeIssuer:
    """Issues and verifies signed challenges. `key` must be secret and at least 16 bytes."""

    key: bytes = field(repr=False)
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.SystemRandom)
    ttl_s: float = 120.0
    window_s: float = 2.0  # each action's window
    lead_s: float = 0.6  # neutral start before the first window
    _used: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("ChallengeIssuer: the key needs at least 16 bytes")

    def issue(self, session: str, n_actions: int | None = None) -> tuple[Challenge, str]:
        """A new random challenge and its signed spec string."""
        n = n_actions if n_actions is not None else self.rng.randint(2, 4)
        if not 2 <= n <= 4:
            raise ValueError("a challenge has 2-4 actions")
        actions: list[str] = []
        while len(actions) < n or not set(actions) & set(HEAD_MOVES):
            if len(actions) == n:  # no head movement: draw again
                actions = []
            pick = self.rng.choice(ACTIONS)
            if not actions or pick != actions[-1]:  # no action twice in a row
                actions.append(pick)
        windows = tuple(
            (self.lead_s + i * self.window_s, self.lead_s + (i + 1) * self.window_s)
            for i in range(n)
        )
        now = self.clock()
        nonce = _b64(self.rng.getrandbits(128).to_bytes(16, "big"))
        challenge = Challenge(nonce, session, tuple(actions), windows, now, now + self.ttl_s)
        return challenge, self.sign(challenge)

    def sign(self, challenge: Challenge) -> str:
        body = _b64(json.dumps(challenge.payload(), sort_keys=True, separators=(",", ":")).encode())
        mac = hmac.new(self.key, f"{_VERSION}.{body}".encode(), hashlib.sha256).digest()
        return f"{_VERSION}.{body}.{_b64(mac)}"

    def verify(self, spec: str, *, session: str | None = None, consume: bool = False) -> Challenge:
        """The challenge a spec stands for, or ChallengeError (unknown / expired)."""
        unknown = ChallengeError(ReasonCode.CHALLENGE_UNKNOWN)
        parts = spec.strip().split(".")
        # A spec is ASCII by construction; anything else (a lone surrogate) would not encode.
        if len(parts) != 3 or parts[0] != _VERSION or not spec.isascii():
            raise unknown
        expected = hmac.new(self.key, f"{_VERSION}.{parts[1]}".encode(), hashlib.sha256).digest()
        # Compared as text, so the MAC has one encoding only (decoding first let the spare bits
        # of the last base64url character vary: a second spelling of the same spec).
        if not secrets.compare_digest(parts[2].encode(), _b64(expected).encode()):
            raise unknown
        try:
            raw = json.loads(_unb64(parts[1]))
            challenge = Challenge(
                nonce=str(raw["nonce"]),
                session=str(raw["session"]),
                actions=tuple(str(a) for a in raw["actions"]),
                windows=tuple((float(s), float(e)) for s, e in raw["windows"]),
                issued_at=float(raw["issued_at"]),
                expires_at=float(raw["expires_at"]),
            )
        # Overflow (an integer too large for a float) and deep JSON: found by fuzzing.
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            raise unknown from None
        if session is not None and not secrets.compare_digest(
            challenge.session.encode("utf-8", "surrogatepass"),
            session.encode("utf-8", "surrogatepass"),
        ):
            raise unknown
        if self.clock() >= challenge.expires_at:
            raise ChallengeError(ReasonCode.CHALLENGE_EXPIRED)
        if challenge.nonce in self._used:
            raise unknown
        if consume:
            self._used.add(challenge.nonce)
        return challenge


@dataclass(frozen=True, slots=True)
class FrameMeasures:
    """What the actions are judged on, per frame (degrees and ratios; NaN = no face)."""

    t: float
    yaw: float
    pitch: float
    eye_ratio: float
    mouth_ratio: float


@dataclass(frozen=True, slots=True)
class ActionThresholds:
    """Change from the clip's neutral start needed to count an action (see docs/liveness.md)."""

    turn_deg: float = 12.0
    look_up_deg: float = 10.0
    # Eye ratio below this fraction of the neutral value. It needs the refined eyelids
    # (`FaceMeshLandmarker(refine_eyes=True)`): the plain mesh drops <= 16 % on real blinks.
    blink_ratio: float = 0.6
    # Mouth ratio above neutral + this. The mesh under-reads an opening: a rendered jaw drop of
    # 0.4 mouth widths from shut lips reads +0.22-0.24 (its reading saturates), so 0.25 missed it.
    mouth_open: float = 0.18
    neutral_s: float = 0.5  # the first seconds give the neutral pose


@dataclass(frozen=True, slots=True)
class ActionCheck:
    action: str
    window: tuple[float, float]
    done: bool
    at: float | None  # time of the peak within the window
    peak: float  # the strongest change seen in the window (degrees or ratio)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "window": list(self.window),
            "done": self.done,
            "at": None if self.at is None else round(self.at, 3),
            "peak": round(self.peak, 3),
        }


def _median(values: Sequence[float]) -> float:
    clean = sorted(v for v in values if v == v)
    if not clean:
        return float("nan")
    mid = len(clean) // 2
    return clean[mid] if len(clean) % 2 else (clean[mid - 1] + clean[mid]) / 2


def follow_actions(
    measures: Sequence[FrameMeasures],
    challenge: Challenge,
    thresholds: ActionThresholds | None = None,
) -> tuple[bool, tuple[ActionCheck, ...]]:
    """Did every action happen inside its window, in order? (ok, per-action checks)."""
    th = thresholds or ActionThresholds()
    start = measures[0].t if measures else 0.0
    neutral = [m for m in measures if m.t - start <= th.neutral_s] or list(measures[:1])
    base_yaw = _median([m.yaw for m in neutral])
    base_pitch = _median([m.pitch for m in neutral])
    base_eye = _median([m.eye_ratio for m in neutral])
    base_mouth = _median([m.mouth_ratio for m in neutral])
    checks: list[ActionCheck] = []
    last_at = -1.0
    for action, window in zip(challenge.actions, challenge.windows, strict=True):
        inside = [m for m in measures if window[0] <= m.t - start <= window[1]]
        need = {
            "turn_left": th.turn_deg,
            "turn_right": th.turn_deg,
            "look_up": th.look_up_deg,
            "blink": 1.0 - th.blink_ratio,
            "open_mouth": th.mouth_open,
        }[action]
        best: tuple[float, float] | None = None  # (strength, t)
        for m in inside:
            if action == "turn_left":
                value = m.yaw - base_yaw
            elif action == "turn_right":
                value = base_yaw - m.yaw
            elif action == "look_up":
                value = m.pitch - base_pitch
            elif action == "blink":
                value = 1.0 - m.eye_ratio / base_eye if base_eye > 0 else float("nan")
            else:  # open_mouth
                value = m.mouth_ratio - base_mouth
            if value == value and (best is None or value > best[0]):
                best = (value, m.t - start)
        done = best is not None and best[0] >= need and best[1] > last_at
        if done and best is not None:
            last_at = best[1]
        checks.append(
            ActionCheck(
                action,
                window,
                done,
                best[1] if best else None,
                best[0] if best else float("nan"),
            )
        )
    return all(c.done for c in checks), tuple(checks)
