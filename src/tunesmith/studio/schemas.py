"""The studio's settings, its error, the logged-in user and the bodies of its JSON API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Path as PathParam
from pydantic import BaseModel, Field

MAX_ID = 2**31 - 1  # ids and counts fit a 32-bit database integer
ID = Annotated[int, PathParam(ge=1, le=MAX_ID)]
INDEX = Annotated[int, PathParam(ge=0, le=MAX_ID)]


@dataclass
class StudioConfig:
    db_url: str | None = None
    workers: int = 2
    worker_threads: int = 1
    guest: bool = False  # guests may read public pieces and the discover page without an account
    max_upload_mb: float = 20.0
    queue_limit: int = 3  # jobs queued or running per listener
    login_per_minute: int = 10
    posts_per_minute: int = 120
    secure_cookies: bool | None = None  # None: when the request came over https
    start_workers: bool = True
    extra_models: list[str] = field(default_factory=list)
    # what "find a tune" searches: bundled corpora by name and folders (empty: the bundled corpora)
    tune_sources: list[str] = field(default_factory=list)


class StudioError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


@dataclass
class User:
    id: int
    name: str
    is_admin: bool
    csrf: str


# --------------------------------------------------------------------------- API bodies


class Credentials(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class GenerateBody(BaseModel):
    model: str = Field(max_length=200)
    bars: int = Field(8, ge=1, le=64)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    num: int = Field(1, ge=1, le=8)
    temperature: float | None = Field(None, gt=0, le=10)
    top_k: int | None = Field(None, ge=0, le=10000)
    top_p: float | None = Field(None, gt=0, le=1)
    key: str | None = Field(None, max_length=40)
    rules: str | None = Field(None, pattern="^(strict|soft|off)$")
    style: str | None = Field(None, max_length=80)
    iterations: int | None = Field(None, ge=1, le=1000)
    latent_scale: float | None = Field(None, gt=0, le=10)
    threshold: float | None = Field(None, gt=0, lt=1)
    primer_piece: int | None = Field(None, ge=1, le=MAX_ID)


class ReworkBody(BaseModel):
    command: str = Field(pattern="^(harmonize|infill)$")
    piece: int = Field(ge=1, le=MAX_ID)
    model: str = Field("chorale-cnn", max_length=200)
    bars: str | None = Field(None, max_length=20)
    voices: str | None = Field(None, max_length=40)
    temperature: float = Field(1.0, gt=0, le=10)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    rules: str | None = Field(None, pattern="^(strict|soft|off)$")
    iterations: int | None = Field(None, ge=1, le=1000)
    melody_track: str | None = Field(None, max_length=100)
    particles: int | None = Field(None, ge=1, le=64)  # harmonize with an SATB-token model: particle filter chains


class VoiceBody(BaseModel):
    model: str = Field("notes-gan", max_length=200)
    instrument: str | None = Field(None, max_length=60)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class EventBody(BaseModel):
    kind: str = Field(pattern="^(play|complete|skip|like|rating)$")
    value: float | None = None


class VisibilityBody(BaseModel):
    public: bool


class TestBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(pattern="^(mos|ab)$")
    systems: dict[str, list[Annotated[int, Field(ge=1, le=MAX_ID)]]] = Field(max_length=3)


class AnswerBody(BaseModel):
    trial: int = Field(ge=0, le=MAX_ID)
    answer: str = Field(pattern="^([1-5]|a|b|tie)$")


class AbcBody(BaseModel):
    abc: str = Field(min_length=1, max_length=100_000)
    title: str = Field("", max_length=200)


class FindBody(BaseModel):
    bars: str | None = Field(None, max_length=20)  # e.g. "5-8": search with those bars only
    top: int = Field(10, ge=1, le=50)
