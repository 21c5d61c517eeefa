"""The state a session needs between requests, shared by every worker: `SharedState`.

Three things outlive one request: the held card (`templates.HeldCard`: the card portrait's face
template and the document's evidence, between the document upload and the clip or selfie), the
used liveness challenges (single use), and the rate-limit buckets. Everything else is in the
database.

- `MemoryState` (the default, `FACEPROOF_REDIS_URL` unset): process memory, for one worker.
- `RedisState` (`FACEPROOF_REDIS_URL=redis://...`): one Redis for all workers, so a session can
  move between them:
  * used challenges: `SET key 1 NX PX <until the challenge expires>`: the first worker to
    consume a challenge wins, every other sees a replay;
  * rate limits: the same token bucket as `ratelimit.MemoryBuckets`, in one Lua script
    (read, refill, take, write: atomic), expiring once the bucket would be full again;
  * held cards: encrypted with AES-256-GCM under a key derived with HKDF-SHA256 from the
    capture token (32 random bytes only the capture client holds; the service keeps only its
    SHA-256), a random salt per write, the session id as associated data; the Redis value is
    ``version (1) || salt (16) || nonce (12) || ciphertext + tag``, with a TTL of the token's
    remaining life, deleted at the decision. A Redis dump or a Redis operator sees neither the
    template nor the card's number; a value cannot be moved to another session either.

Keys are `<prefix>card:<session id>`, `<prefix>used:<sha256>` and `<prefix>rl:<sha256>`: no
client address or tenant id in the clear. Redis must not persist these keys (docs/service.md).
A Redis that does not answer within 2 s is a 503 `shared_state_unavailable`, never a hang.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceproof.errors import ServiceError
from faceproof.reasons import ReasonCode

from .ratelimit import MemoryBuckets, TokenBuckets
from .templates import HeldCard, TemplateStore, decode_card, encode_card

if TYPE_CHECKING:
    import redis

    from faceproof.settings import Settings

__all__ = [
    "HeldCards",
    "MemoryState",
    "RedisState",
    "SharedState",
    "card_key",
    "open_shared_state",
]

_CARD_VERSION = b"\x01"
_SALT, _NONCE = 16, 12
_TIMEOUT_S = 2.0


class HeldCards(Protocol):
    @property
    def keeps_pixels(self) -> bool:
        """False: the card is stored without pixels, so it must carry every embedding."""
        ...

    def put(self, session_id: str, token: str, card: HeldCard, expires_at: datetime) -> None: ...

    def get(self, session_id: str, token: str) -> HeldCard | None: ...

    def touch(self, session_id: str, expires_at: datetime) -> None: ...

    def drop(self, session_id: str) -> None: ...

    def __len__(self) -> int: ...


class SharedState(Protocol):
    @property
    def cards(self) -> HeldCards: ...

    @property
    def buckets(self) -> TokenBuckets: ...

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        """Mark `key` used until `expires_at`: True the first time, False ever after."""
        ...

    def was_used(self, key: str) -> bool:
        """Whether `key` is already used (a look, not a claim: only `consume_once` claims)."""
        ...

    def close(self) -> None: ...


# --- one worker ---------------------------------------------------------------------------------


class MemoryState:
    def __init__(self, clock: Callable[[], datetime], max_used: int = 100_000) -> None:
        self._clock = clock
        self.cards = TemplateStore(clock)
        self.buckets = MemoryBuckets()
        self._used: dict[str, datetime] = {}
        self._max_used = max_used
        self._lock = threading.Lock()

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        with self._lock:
            if key in self._used:
                return False
            if len(self._used) >= self._max_used:  # forget only what has expired anyway
                now = self._clock()
                self._used = {k: t for k, t in self._used.items() if t > now}
            self._used[key] = expires_at
            return True

    def was_used(self, key: str) -> bool:
        with self._lock:
            return key in self._used

    def close(self) -> None:
        return None


# --- many workers: Redis ------------------------------------------------------------------------


def card_key(token: str, session_id: str, salt: bytes) -> bytes:
    """The AES-256 key of a held card: HKDF-SHA256 of the capture token."""
    info = b"faceproof held card v1\x00" + session_id.encode()
    return HKDF(hashes.SHA256(), 32, salt, info).derive(token.encode())


def _hashed(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@contextmanager
def _redis_errors() -> Iterator[None]:
    import redis

    try:
        yield
    except redis.RedisError as exc:
        raise ServiceError(ReasonCode.SHARED_STATE_UNAVAILABLE, type(exc).__name__) from exc


# KEYS[1] bucket; ARGV capacity, rate (tokens/s), now (s). Returns "0" when a token was taken,
# else the tokens missing. The same arithmetic as ratelimit.MemoryBuckets.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(saved[1])
local ts = tonumber(saved[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
end
local missing = 0
if tokens < 1 then
  missing = 1 - tokens
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts',
  string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return string.format('%.17g', missing)
"""


class _RedisBuckets:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._script = client.register_script(_TAKE)
        self._prefix = prefix

    def take(self, key: str, capacity: float, rate: float, now: float) -> float:
        with _redis_errors():
            out = self._script(
                keys=[f"{self._prefix}rl:{_hashed(key)}"], args=[capacity, rate, now]
            )
        return float(cast(bytes, out))


class _RedisCards:
    keeps_pixels = False

    def __init__(self, client: redis.Redis, prefix: str, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}card:{session_id}"

    def put(self, session_id: str, token: str, card: HeldCard, expires_at: datetime) -> None:
        ttl_ms = int((expires_at - self._clock()).total_seconds() * 1000)
        if ttl_ms <= 0:
            return
        salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
        sealed = AESGCM(card_key(token, session_id, salt)).encrypt(
            nonce, encode_card(card), session_id.encode()
        )
        with _redis_errors():
            self._client.set(
                self._key(session_id), _CARD_VERSION + salt + nonce + sealed, px=ttl_ms
            )

    def get(self, session_id: str, token: str) -> HeldCard | None:
        with _redis_errors():
            value = cast(bytes | None, self._client.get(self._key(session_id)))
        if value is None or value[:1] != _CARD_VERSION:
            return None
        salt, nonce = value[1 : 1 + _SALT], value[1 + _SALT : 1 + _SALT + _NONCE]
        try:
            plain = AESGCM(card_key(token, session_id, salt)).decrypt(
                nonce, value[1 + _SALT + _NONCE :], session_id.encode()
            )
        except InvalidTag:
            return None  # another token or a tampered value: as good as not held
        return decode_card(plain)

    def touch(self, session_id: str, expires_at: datetime) -> None:
        ttl_ms = int((expires_at - self._clock()).total_seconds() * 1000)
        with _redis_errors():
            if ttl_ms > 0:
                self._client.pexpire(self._key(session_id), ttl_ms)

    def drop(self, session_id: str) -> None:
        with _redis_errors():
            self._client.delete(self._key(session_id))

    def __len__(self) -> int:
        with _redis_errors():
            return sum(1 for _ in self._client.scan_iter(match=f"{self._prefix}card:*"))


class RedisState:
    def __init__(
        self, client: redis.Redis, clock: Callable[[], datetime], prefix: str = "faceproof:"
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._clock = clock
        self.cards = _RedisCards(client, prefix, clock)
        self.buckets = _RedisBuckets(client, prefix)

    @classmethod
    def from_url(
        cls, url: str, clock: Callable[[], datetime], prefix: str = "faceproof:"
    ) -> RedisState:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S
        )
        return cls(client, clock, prefix)

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        # Kept at least one second, and past the expiry by the app's clock.
        ttl_ms = max(1000, int((expires_at - self._clock()).total_seconds() * 1000) + 1000)
        with _redis_errors():
            done = self.client.set(f"{self.prefix}used:{_hashed(key)}", b"1", nx=True, px=ttl_ms)
        return bool(done)

    def was_used(self, key: str) -> bool:
        with _redis_errors():
            return bool(self.client.exists(f"{self.prefix}used:{_hashed(key)}"))

    def close(self) -> None:
        self.client.close()


def open_shared_state(settings: Settings, clock: Callable[[], datetime]) -> SharedState:
    """Redis when `FACEPROOF_REDIS_URL` is set, else process memory."""
    if settings.redis_url is None:
        return MemoryState(clock)
    return RedisState.from_url(settings.redis_url.get_secret_value(), clock, settings.redis_prefix)
