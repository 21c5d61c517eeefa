"""Service settings, read from the environment (prefix ``FACEPROOF_``) by pydantic-settings.

Development (the default) is self-contained: SQLite under ``./faceproof-data``, a receipt signing
key generated on first start (file mode 0600) and a pseudonym key generated beside it.
Production refuses to start without explicit secrets: a receipt key file that exists, a
pseudonym key that is not empty and not the development default, and a challenge key.
The challenge key (HMAC for liveness challenges, hex, >= 16 bytes; the same variable
`FACEPROOF_CHALLENGE_KEY` that `faceproof liveness --challenge` reads) is derived from the
pseudonym key in development when it is not set.
"""

from __future__ import annotations

import hashlib
import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEV_PSEUDONYM_KEY", "Environment", "PadModelSettings", "Settings", "SettingsError"]

DEV_PSEUDONYM_KEY = "dev-only-pseudonym-key-change-me"


class SettingsError(ValueError):
    """The settings are not safe or not usable for the chosen environment."""


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class PadModelSettings(BaseSettings):
    """An operator-supplied ONNX PAD model (liveness/pad_model.py): one more liveness cue.

    Unset (the default): no such cue. Its own class so that the offline CLI can read just these
    without the service's production checks; `Settings` has them too.
    """

    model_config = SettingsConfigDict(env_prefix="FACEPROOF_", extra="ignore")

    pad_model_path: Path | None = None
    pad_model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    # The model's live probability (median over a few frames) must reach this to pass.
    pad_model_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # Its input contract; the defaults are MiniFASNetV2's (80x80, face box enlarged 2.7x, BGR,
    # float 0..255, softmax over 3 classes of which index 1 is live).
    pad_model_input_size: int = Field(default=80, ge=16, le=1024)
    pad_model_crop_scale: float = Field(default=2.7, ge=1.0, le=6.0)
    pad_model_channel_order: Literal["bgr", "rgb"] = "bgr"
    pad_model_pixel_scale: float = Field(default=1.0, gt=0.0)  # input = pixel * scale + offset
    pad_model_pixel_offset: float = 0.0
    pad_model_output: Literal["logits", "probabilities"] = "logits"
    pad_model_live_index: int = Field(default=1, ge=0, le=63)

    @model_validator(mode="after")
    def _pad_model_path_and_hash_together(self) -> PadModelSettings:
        if (self.pad_model_path is None) != (self.pad_model_sha256 is None):
            raise ValueError(
                "FACEPROOF_PAD_MODEL_PATH and FACEPROOF_PAD_MODEL_SHA256 must be set together"
            )
        return self


class Settings(PadModelSettings):
    model_config = SettingsConfigDict(env_prefix="FACEPROOF_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("faceproof-data")
    database_url: str = ""  # empty: sqlite:///<data_dir>/faceproof.db
    receipt_key_path: Path | None = None  # empty: <data_dir>/receipt-ed25519.pem (dev only)
    receipt_issuer: str = "faceproof"
    # Retired receipt keys, still published in the JWKS so that old receipts verify: PEM files
    # (public or private) or folders of *.pem, separated by commas; empty: none.
    receipt_previous_keys: str = ""
    pseudonym_key: SecretStr = SecretStr(DEV_PSEUDONYM_KEY)
    public_base_url: str = "http://127.0.0.1:8000"
    attempts_limit: int = Field(default=3, ge=1, le=10)
    session_ttl_seconds: int = Field(default=30 * 60, ge=60)
    capture_token_ttl_seconds: int = Field(default=10 * 60, ge=30)
    retention_days: int = Field(default=90, ge=1)
    max_upload_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_clip_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Liveness analyses one worker runs at once, each on its own engine (its models' memory):
    # more than the cores only queues CPU work inside the process instead of before it.
    liveness_slots: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), ge=1, le=16)
    # Seconds the applicant gets for each challenge action (the page prompts one per window).
    # 2 s suits everyone; shorter windows give shorter clips (less to upload and analyse) but
    # hurry slower applicants (WCAG 2.2.1).
    challenge_window_seconds: float = Field(default=2.0, ge=1.0, le=5.0)
    challenge_key: SecretStr = SecretStr("")  # hex, >= 16 bytes; empty: derived (dev only)
    run_migrations_on_start: bool | None = None  # None: only in development
    # Refuse plaintext photos and clips: the capture client must encrypt them to the session's
    # key (privacy/upload_crypto.py). The capture page always does when it can.
    require_encrypted_uploads: bool = False
    rate_limit_tenant_per_minute: int = Field(default=600, ge=0)  # 0: off
    rate_limit_client_per_minute: int = Field(default=120, ge=0)  # 0: off
    capture_origins: list[str] = []  # CORS: origins of the capture page (JSON list in env)
    # Issuer genuineness check (진위확인): base URL of a service with the contract of
    # documents/issuer.py (e.g. `faceproof document issuer-sim`); None: not configured.
    issuer_url: str | None = None
    issuer_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # Degraded dependencies (faceproof.resilience): retries after a failed issuer call
    # (connection error, timeout, 5xx; full-jitter backoff), and the circuit breaker of each
    # remote dependency: open after this many consecutive failures, half-open after the cool-down.
    issuer_retries: int = Field(default=2, ge=0, le=5)
    breaker_failures: int = Field(default=5, ge=1, le=100)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Shared state for more than one worker (held cards, used challenges, rate limits):
    # redis://host:port/db; None: in process memory (one worker). See docs/service.md.
    redis_url: SecretStr | None = None
    redis_prefix: str = Field(default="faceproof:", min_length=1, max_length=64)
    # Development and tests only (refused in production): seeds the challenge RNG so that a
    # test can record a clip for the actions it will be asked for.
    challenge_seed: int | None = None
    # The cross-carrier line registry (`faceproof registry serve`) and this carrier's key for
    # it. Without a URL, development uses an in-memory registry (limits hold per process only).
    registry_url: str | None = None
    registry_key: SecretStr | None = None
    registry_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # The subscription rules (versioned YAML); None: the packaged rules.
    policy_rules_path: str | None = None
    # Where development new-line alerts go (read them with `faceproof outbox`).
    outbox_path: str | None = None
    # The mobile-ID path: a JSON trust list {issuer id: Ed25519 public JWK}; None: not offered.
    mobile_id_trust_path: str | None = None
    # New-line alert gateways, used by `faceproof outbox --deliver` (the service itself only
    # writes the outbox): an SMTP server (e-mail) and/or an SMS gateway URL; None: not set.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_sender: str | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    alert_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Signed webhooks (api/webhooks.py): the key that encrypts the endpoints' signing secrets at
    # rest (hex, >= 32 bytes; empty: derived from the challenge key), one delivery's timeout,
    # tries before a delivery is `failed`, the backoff between tries (full jitter, doubling from
    # the base up to the max), and how often each worker looks for due deliveries.
    webhook_key: SecretStr = SecretStr("")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    webhook_max_attempts: int = Field(default=12, ge=1, le=20)
    webhook_retry_base_seconds: float = Field(default=30.0, ge=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=3600.0, ge=0, le=86400)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        challenge_key = self.challenge_key.get_secret_value()
        if challenge_key:
            try:
                usable = len(bytes.fromhex(challenge_key)) >= 16
            except ValueError:
                usable = False
            if not usable:
                raise ValueError("FACEPROOF_CHALLENGE_KEY must be hex of at least 16 bytes")
        if self.environment is Environment.PRODUCTION:
            if self.challenge_seed is not None:
                raise ValueError("FACEPROOF_CHALLENGE_SEED is for development only")
            key = self.pseudonym_key.get_secret_value()
            if not key or key == DEV_PSEUDONYM_KEY or len(key) < 32:
                raise ValueError(
                    "FACEPROOF_PSEUDONYM_KEY must be set to a random secret of at least 32 "
                    "characters in production"
                )
            if self.receipt_key_path is None:
                raise ValueError("FACEPROOF_RECEIPT_KEY_PATH must be set in production")
            if not self.database_url:
                raise ValueError("FACEPROOF_DATABASE_URL must be set in production")
            if not challenge_key:
                raise ValueError(
                    "FACEPROOF_CHALLENGE_KEY must be set in production (hex, >= 16 bytes; "
                    "e.g. `openssl rand -hex 32`)"
                )
        return self

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'faceproof.db').as_posix()}"

    @property
    def effective_receipt_key_path(self) -> Path:
        return self.receipt_key_path or self.data_dir / "receipt-ed25519.pem"

    @property
    def receipt_previous_key_paths(self) -> tuple[Path, ...]:
        """`receipt_previous_keys` split on commas (for `load_or_create_signing_key`)."""
        return tuple(Path(p.strip()) for p in self.receipt_previous_keys.split(",") if p.strip())

    @property
    def migrate_on_start(self) -> bool:
        if self.run_migrations_on_start is None:
            return self.is_development
        return self.run_migrations_on_start

    def pseudonym_secret(self) -> bytes:
        return self.pseudonym_key.get_secret_value().encode()

    def challenge_secret(self) -> bytes:
        """The HMAC key for liveness challenges (derived from the pseudonym key in dev)."""
        key = self.challenge_key.get_secret_value()
        if key:
            return bytes.fromhex(key)
        return hashlib.sha256(b"faceproof-dev-challenge-key\0" + self.pseudonym_secret()).digest()

    def webhook_secret(self) -> bytes:
        """The AES-256 key that seals the webhooks' signing secrets in the database."""
        key = self.webhook_key.get_secret_value()
        if key:
            try:
                raw = bytes.fromhex(key)
            except ValueError:
                raw = b""
            if len(raw) < 32:
                raise SettingsError("FACEPROOF_WEBHOOK_KEY must be hex of at least 32 bytes")
            return hashlib.sha256(b"faceproof-webhook-key\0" + raw).digest()
        return hashlib.sha256(b"faceproof-webhook-key\0" + self.challenge_secret()).digest()

    def upload_secret(self) -> bytes:
        """The server secret the sessions' upload keys derive from (privacy/upload_crypto)."""
        return hashlib.sha256(b"faceproof-upload-key\0" + self.challenge_secret()).digest()

    def ensure_data_dir(self) -> None:
        """Create the data folder (mode 0700) when SQLite or a generated key will live there."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
