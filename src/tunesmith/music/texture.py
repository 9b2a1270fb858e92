"""Whether notes are one line: the test analysis, search and the key readers share.

Arrays only, no Score import: ``music.keys`` (which ``music.score`` imports) reads a melody's key
by it.
"""

from __future__ import annotations

import numpy as np


def is_recording(score) -> bool:
    """Notes transcribed from audio (music/audio.py tags them)."""
    return "transcribed" in (score.meta.tags or [])


# a recording whose onsets hold two notes not an octave apart more often than this is not one line
RECORDED_CHORD_SHARE = 0.2


def chord_onset_share(start: np.ndarray, pitch: np.ndarray, tpq: int) -> float:
    """The share of onsets (notes begun within a 32nd of each other) that hold two notes which are
    not an octave apart: how a recording — one track, its notes ringing on by their decay, an
    organ sounding octaves of each key — tells one line (0–0.10 on held-out renders of tunes) from
    several voices (0.41–0.79 on four-voice chorales)."""
    if not len(start):
        return 0.0
    order = np.lexsort((pitch, start))
    s, p = np.asarray(start)[order], np.asarray(pitch)[order]
    group = np.r_[0, np.cumsum(np.diff(s) > tpq // 8)]
    chords = sum(bool(((q[:, None] - q[None, :]) % 12 != 0).any()) for q in np.split(p, np.flatnonzero(np.diff(group)) + 1))
    return chords / (int(group[-1]) + 1)


def is_one_line(start: np.ndarray, end: np.ndarray, pitch: np.ndarray, tpq: int, *, recorded: bool = False) -> bool:
    """Whether one track's notes are one line: a score's neither start together (under 5% of
    them) nor sound through most of the next note (under 20%); a recording's — its notes ringing
    on by their decay, an organ sounding octaves of each key — hold two notes not an octave apart
    at under :data:`RECORDED_CHORD_SHARE` of its onsets (:func:`chord_onset_share`)."""
    if recorded:
        return chord_onset_share(start, pitch, tpq) < RECORDED_CHORD_SHARE
    if len(start) < 2:
        return True
    order = np.lexsort((pitch, start))
    s, e = np.asarray(start)[order], np.asarray(end)[order]
    together = (np.diff(s) <= tpq // 8).mean()
    held = ((e[:-1] - s[1:]) > 0.5 * np.maximum(e[1:] - s[1:], 1)).mean()
    return bool(together < 0.05 and held < 0.2)
