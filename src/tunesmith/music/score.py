"""The one in-memory type for a piece of music.

A :class:`Score` is a symusic ``Score`` (tick-based, fast, lossless for MIDI)
plus the metadata that MIDI cannot carry (title, composer, source, tags).
Every reader returns one, every representation converts to and from one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import symusic

DEFAULT_TPQ = 480


@dataclass
class Meta:
    """Metadata of a piece. ``key`` like ``"G major"``; ``time_signature`` like ``"3/4"``;
    ``tempo`` in quarter notes per minute."""

    title: str = ""
    composer: str = ""
    source: str = ""
    key: str | None = None
    time_signature: str | None = None
    tempo: float | None = None
    tags: list[str] = field(default_factory=list)
    # a transcription's: the recording's time (seconds) at the score's time 0 — the bar line of its
    # first bar, which may come before the recording begins (a pickup)
    audio_offset: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Meta:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class Score:
    """A piece of music: ``music`` (symusic Score in ticks) and ``meta``."""

    music: symusic.Score
    meta: Meta = field(default_factory=Meta)

    @property
    def tpq(self) -> int:
        return int(self.music.ticks_per_quarter)

    @property
    def n_notes(self) -> int:
        return int(sum(len(t.notes) for t in self.music.tracks))

    @property
    def n_tracks(self) -> int:
        return len(self.music.tracks)

    @property
    def end_tick(self) -> int:
        return int(self.music.end()) if self.n_notes or len(self.music.tempos) else 0

    def duration_seconds(self) -> float:
        if self.n_notes == 0:
            return 0.0
        return float(self.music.to("second").end())

    def duration_quarters(self) -> float:
        return self.end_tick / self.tpq

    def pitches(self) -> np.ndarray:
        """All note pitches, shape (n_notes,)."""
        arrs = [t.notes.numpy()["pitch"] for t in self.music.tracks if len(t.notes)]
        return np.concatenate(arrs) if arrs else np.zeros(0, dtype=np.int8)

    def time_signature(self) -> str | None:
        ts = self.music.time_signatures
        if len(ts):
            return f"{ts[0].numerator}/{ts[0].denominator}"
        return self.meta.time_signature

    def tempo(self) -> float | None:
        if len(self.music.tempos):
            return float(self.music.tempos[0].qpm)
        return self.meta.tempo

    def copy(self) -> Score:
        return Score(self.music.copy(), Meta.from_dict(self.meta.to_dict()))

    def bars(self) -> int:
        """Bars that hold music (by the score's own bar lines)."""
        down = self.music.get_downbeats()
        return int(np.searchsorted(down, self.music.end(), side="left")) if len(down) else 0

    def first_bars(self, n: int) -> tuple[Score, int]:
        """(a copy holding only the first ``n`` bars, notes ringing past them shortened; the
        bars the whole score has). The score itself when it is no longer."""
        total = self.bars()
        if total <= n:
            return self, total
        down = self.music.get_downbeats()
        end = int(down[n])
        return Score(self.music.clip(0, end, clip_end=True), Meta.from_dict(self.meta.to_dict())), total

    def transpose(self, semitones: int) -> Score:
        """A copy shifted by ``semitones`` (drum tracks are left alone)."""
        out = self.copy()
        for tr in out.music.tracks:
            if not tr.is_drum:
                tr.shift_pitch(semitones, inplace=True)
        if out.meta.key:
            from tunesmith.music.keys import transpose_key_name

            out.meta.key = transpose_key_name(out.meta.key, semitones)
        return out
