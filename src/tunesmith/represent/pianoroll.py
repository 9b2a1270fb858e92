"""Multi-track piano rolls (tracks × time steps × pitches) on a chosen grid,
for the convolutional and GAN models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic

from tunesmith.music.score import Meta, Score


@dataclass
class PianoRoll:
    """``frames[v, t, p]`` is 1 while pitch ``pitch_lo + p`` sounds in track ``v`` at step ``t``;
    ``onsets`` marks where notes start (so repeated notes survive a round trip)."""

    frames: np.ndarray  # (V, T, P) uint8
    onsets: np.ndarray  # (V, T, P) uint8
    steps_per_quarter: int
    pitch_lo: int
    programs: list[int]
    names: list[str]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.frames.shape


def quantize(score: Score, steps_per_quarter: int) -> symusic.Score:
    """The score on the grid (every note at least one step long)."""
    return score.music.resample(tpq=steps_per_quarter, min_dur=1)


def score_to_pianoroll(score: Score, *, steps_per_quarter: int = 4,
                       pitch_range: tuple[int, int] = (0, 128), n_steps: int | None = None) -> PianoRoll:
    """Score → :class:`PianoRoll` (one row per track, drum tracks included as they are)."""
    q = quantize(score, steps_per_quarter)
    lo, hi = pitch_range
    T = n_steps if n_steps is not None else int(q.end()) if len(q.tracks) else 0
    V = len(q.tracks)
    frames = np.zeros((V, T, hi - lo), dtype=np.uint8)
    onsets = np.zeros_like(frames)
    for v, tr in enumerate(q.tracks):
        if not len(tr.notes):
            continue
        n = tr.notes.numpy()
        keep = (n["pitch"] >= lo) & (n["pitch"] < hi) & (n["time"] < T)
        for t, d, p in zip(n["time"][keep], n["duration"][keep], n["pitch"][keep]):
            frames[v, t : min(T, t + d), p - lo] = 1
            onsets[v, t, p - lo] = 1
    return PianoRoll(frames, onsets, steps_per_quarter, lo, [int(t.program) for t in q.tracks],
                     [t.name for t in q.tracks])


def pianoroll_to_score(roll: PianoRoll, *, tpq: int = 480, meta: Meta | None = None) -> Score:
    """Inverse of :func:`score_to_pianoroll`: a note runs from an onset (or a rise of the
    frame) to the next onset or the end of the run."""
    music = symusic.Score(tpq)
    step = tpq // roll.steps_per_quarter
    V, T, P = roll.frames.shape
    for v in range(V):
        name = roll.names[v] if v < len(roll.names) else f"Track {v + 1}"
        program = roll.programs[v] if v < len(roll.programs) else 0
        tr = symusic.Track(name=name, program=program)
        f = roll.frames[v] > 0
        o = (roll.onsets[v] > 0) & f
        prev = np.vstack([np.zeros((1, P), bool), f[:-1]])
        starts = o | (f & ~prev)
        for p in range(P):
            col_f, col_s = f[:, p], starts[:, p]
            ts = np.nonzero(col_s)[0]
            for k, t in enumerate(ts):
                end = t + 1
                limit = ts[k + 1] if k + 1 < len(ts) else T
                while end < limit and col_f[end]:
                    end += 1
                tr.notes.append(symusic.Note(int(t * step), int((end - t) * step), roll.pitch_lo + p, 80))
        tr.notes.sort()
        music.tracks.append(tr)
    return Score(music, meta or Meta())
