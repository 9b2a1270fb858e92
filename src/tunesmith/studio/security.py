"""Passwords (argon2), login sessions (random cookie tokens stored only as SHA-256 hashes),
CSRF tokens, rate limits and what an uploaded file really is."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import zipfile
from collections import deque
from datetime import datetime, timedelta, timezone
from io import BytesIO

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SESSION_DAYS = 14
COOKIE = "ts_session"
PRE_COOKIE = "ts_pre"  # the double-submit CSRF token of the login and register forms
_HASHER = PasswordHasher()  # argon2id with the library's recommended parameters


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def expiry() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=SESSION_DAYS)


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and secrets.compare_digest(str(a), str(b))


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (a sliding window in memory)."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and now - q[0] > self.window:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            if len(self._hits) > 100_000:  # forget idle keys rather than grow without bound
                for k in [k for k, v in self._hits.items() if not v][:50_000]:
                    del self._hits[k]
            return True


# What an upload is, from its first bytes (never from its name): kind → file extension.
KINDS = {"midi": ".mid", "musicxml": ".musicxml", "mxl": ".mxl", "abc": ".abc", "kern": ".krn",
         "wav": ".wav", "flac": ".flac", "ogg": ".ogg", "mp3": ".mp3"}
AUDIO_KINDS = ("wav", "flac", "ogg", "mp3")


def sniff(data: bytes) -> str | None:
    """The kind of a music file from its content, or None when it is none of :data:`KINDS`."""
    head = data[:4096]
    if head.startswith(b"MThd"):
        return "midi"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(BytesIO(data)) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            return None
        return "mxl" if "META-INF/container.xml" in names else None
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    stripped = text.lstrip()
    if stripped.startswith("<") and ("<score-partwise" in text or "<score-timewise" in text):
        return "musicxml"
    if "**kern" in text:
        return "kern"
    lines = [ln.strip() for ln in text.splitlines()]
    if any(ln.startswith("X:") for ln in lines) and any(ln.startswith("K:") for ln in lines):
        return "abc"
    return None
