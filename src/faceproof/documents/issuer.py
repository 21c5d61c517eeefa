"""Issuer genuineness check (진위확인): a pluggable `IssuerCheck`, an HTTP adapter, a simulator.

In Korea the issuing agencies confirm a card through a government service: a resident card by
name, registration number and issue date; a driver's licence by name and licence number. This
module defines the seam and one contract:

    POST /v1/verify   {"type", "name", "number", "issue_date", "license_number"}
    200               {"status": "valid" | "lost" | "revoked" | "superseded" | "not_found"}

- `IssuerCheck` (Protocol): `check(query) -> Check`, with codes `issuer_confirmed` (ok),
  `issuer_not_found`, `issuer_lost`, `issuer_revoked`, `issuer_superseded` (reject) and
  `issuer_unavailable` (warning: the service could not answer; the case goes to review).
- `HttpIssuerCheck`: the adapter for that contract (httpx, timeout, bounded retries with
  backoff, a circuit breaker: `faceproof.resilience`).
- `IssuerRegistry` + `make_server`: a real local HTTP simulator answering the same contract from
  a registry of issued cards (`faceproof document issuer-sim --registry cards.json`). A query
  matches a record when type, key (licence number for driver's licences, else registration
  number) and name agree, and, when given, the issue date; a matched issue that is not the
  newest for its key is `superseded`.

The simulator stands in for the government service, so its registry holds numbers; faceproof
itself never stores them, and neither side logs them (the simulator's request log is silent).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, Protocol

import httpx

from faceproof.documents.types import Check, DocumentType
from faceproof.reasons import ReasonCode
from faceproof.resilience import CircuitBreaker, CircuitOpenError, RetryPolicy, call

__all__ = [
    "HttpIssuerCheck",
    "IssuedCard",
    "IssuerCheck",
    "IssuerQuery",
    "IssuerRegistry",
    "IssuerStatus",
    "make_server",
    "serve_in_thread",
    "status_check",
]

MAX_BODY_BYTES: Final = 16 * 1024


class IssuerStatus(StrEnum):
    VALID = "valid"
    LOST = "lost"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    NOT_FOUND = "not_found"


_CODES: Final = {
    IssuerStatus.VALID: ReasonCode.ISSUER_CONFIRMED,
    IssuerStatus.LOST: ReasonCode.ISSUER_LOST,
    IssuerStatus.REVOKED: ReasonCode.ISSUER_REVOKED,
    IssuerStatus.SUPERSEDED: ReasonCode.ISSUER_SUPERSEDED,
    IssuerStatus.NOT_FOUND: ReasonCode.ISSUER_NOT_FOUND,
}


@dataclass(frozen=True, slots=True, repr=False)
class IssuerQuery:
    """What the issuer is asked. Holds the raw number: memory only, repr redacted."""

    type: DocumentType
    name: str
    number: str = ""
    issue_date: str = ""
    license_number: str = ""

    def __repr__(self) -> str:
        return f"IssuerQuery(type={self.type.value!r}, issue_date={self.issue_date!r})"

    def to_json(self) -> dict[str, str]:
        return {
            "type": self.type.value,
            "name": self.name,
            "number": self.number,
            "issue_date": self.issue_date,
            "license_number": self.license_number,
        }


class IssuerCheck(Protocol):
    def check(self, query: IssuerQuery) -> Check: ...


def status_check(status: IssuerStatus) -> Check:
    """The Check for an issuer's answer."""
    return Check("issuer", status is IssuerStatus.VALID, _CODES[status])


class _IssuerDownError(Exception):
    """A failure that says the issuer service is down (retried, counted by the breaker)."""


class HttpIssuerCheck:
    """`IssuerCheck` over HTTP (the contract above). An unreachable or broken service gives
    the warning `issuer_unavailable`, never an exception, within a bounded time:

    - each request has `timeout` seconds; connection errors, timeouts and 5xx answers are
      retried (`retry`: by default 3 tries, full-jitter backoff from 0.1 s, at most
      2 x `timeout` spent on retries);
    - a `CircuitBreaker` (`breaker`: by default open after 5 consecutive failures, half-open
      after 30 s) makes calls fail at once while the issuer is known to be down: then no request
      is sent and the check is `issuer_unavailable` straight away.

    A 4xx or an answer that does not follow the contract is `issuer_unavailable` without retry
    (the service is up; asking again would not help)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self.retry = retry or RetryPolicy(attempts=3, budget_s=2 * timeout)
        self.breaker = breaker or CircuitBreaker("issuer")
        self._sleep = sleep

    def _post(self, body: dict[str, str]) -> httpx.Response:
        try:
            response = self._client.post("/v1/verify", json=body)
        except httpx.TransportError as exc:
            raise _IssuerDownError(type(exc).__name__) from exc
        if response.status_code >= 500:
            raise _IssuerDownError(f"HTTP {response.status_code}")
        return response

    def check(self, query: IssuerQuery) -> Check:
        body = query.to_json()
        try:
            response = call(
                lambda: self._post(body),
                retry_on=(_IssuerDownError,),
                policy=self.retry,
                breaker=self.breaker,
                sleep=self._sleep,
            )
            response.raise_for_status()
            status = IssuerStatus(response.json()["status"])
        except CircuitOpenError:
            detail = "issuer service unavailable: circuit open"
            return Check("issuer", False, ReasonCode.ISSUER_UNAVAILABLE, detail)
        # RecursionError: a hostile or broken issuer answering deeply nested JSON.
        except (
            _IssuerDownError,
            httpx.HTTPError,
            ValueError,
            KeyError,
            TypeError,
            RecursionError,
        ) as exc:
            name = str(exc) if isinstance(exc, _IssuerDownError) else type(exc).__name__
            detail = f"issuer service failed: {name}"
            return Check("issuer", False, ReasonCode.ISSUER_UNAVAILABLE, detail)
        return status_check(status)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpIssuerCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the simulator --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class IssuedCard:
    type: DocumentType
    name: str
    issue_date: str
    status: IssuerStatus = IssuerStatus.VALID
    number: str = ""
    license_number: str = ""

    @property
    def key(self) -> str:
        if self.type is DocumentType.KR_DRIVER_LICENSE and self.license_number:
            return _norm(self.license_number)
        return _norm(self.number)


def _norm(value: str) -> str:
    return value.replace("-", "").replace(" ", "").upper()


class IssuerRegistry:
    """Issued cards, answering `lookup(query) -> IssuerStatus` (thread-safe, read-only)."""

    def __init__(self, cards: list[IssuedCard]) -> None:
        self._cards = tuple(cards)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IssuerRegistry:
        cards = [
            IssuedCard(
                type=DocumentType(c["type"]),
                name=str(c["name"]),
                issue_date=str(c["issue_date"]),
                status=IssuerStatus(c.get("status", "valid")),
                number=str(c.get("number", "")),
                license_number=str(c.get("license_number", "")),
            )
            for c in data["cards"]
        ]
        return cls(cards)

    @classmethod
    def load(cls, path: str | Path) -> IssuerRegistry:
        return cls.from_json(json.loads(Path(path).read_text("utf-8")))

    def lookup(self, query: IssuerQuery) -> IssuerStatus:
        probe = IssuedCard(
            query.type, query.name, "", number=query.number, license_number=query.license_number
        )
        same = sorted(
            (c for c in self._cards if c.type is query.type and c.key == probe.key),
            key=lambda c: c.issue_date,
        )
        same = [c for c in same if c.name == query.name]
        if not probe.key or not same:
            return IssuerStatus.NOT_FOUND
        matched = [c for c in same if not query.issue_date or c.issue_date == query.issue_date]
        if not matched:
            return IssuerStatus.NOT_FOUND
        card = matched[-1]
        if card is not same[-1]:
            return IssuerStatus.SUPERSEDED
        return card.status


def make_server(
    registry: IssuerRegistry, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """An HTTP server for the contract; call `serve_forever()` (port 0 picks a free port)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # silent: requests carry registration numbers

        def _answer(self, code: int, body: dict[str, str]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/v1/verify":
                self._answer(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY_BYTES:
                self._answer(413 if length > 0 else 400, {"error": "bad body size"})
                return
            try:
                data = json.loads(self.rfile.read(length))
                query = IssuerQuery(
                    type=DocumentType(data["type"]),
                    name=str(data["name"]),
                    number=str(data.get("number") or ""),
                    issue_date=str(data.get("issue_date") or ""),
                    license_number=str(data.get("license_number") or ""),
                )
            except (ValueError, KeyError, TypeError):
                self._answer(400, {"error": "malformed request"})
                return
            self._answer(200, {"status": registry.lookup(query).value})

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Run `server` in a daemon thread (tests, demos); stop with `server.shutdown()`."""
    thread = threading.Thread(target=server.serve_forever, name="issuer-sim", daemon=True)
    thread.start()
    return thread
