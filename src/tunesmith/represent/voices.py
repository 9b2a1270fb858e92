"""Four-voice (SATB) rolls on a sixteenth-note grid, for the convolutional and GAN models.

A piece becomes ``voices[v, t]``: the class of voice ``v`` (0 = soprano … 3 = bass)
at step ``t``, where class 0 is a rest and class ``k ≥ 1`` is MIDI pitch
``PITCH_LO + k − 1``. Voices are the piece's four pitched tracks ordered by mean
pitch. The inverse writes one note per run of equal classes, so a repeated note is
merged with its predecessor (as in Coconet, which models no onsets); where the
exact notes matter (the given melody of ``harmonize``, the kept bars of
``infill``) the original notes are copied instead of being rebuilt from the roll.
"""

from __future__ import annotations

import numpy as np
import symusic

from tunesmith.music.score import Meta, Score

PITCH_LO, PITCH_HI = 36, 82  # C2 .. A5, the chorale range
N_PITCHES = PITCH_HI - PITCH_LO  # 46
N_CLASSES = N_PITCHES + 1  # + rest
STEPS_PER_QUARTER = 4
N_VOICES = 4
VOICE_NAMES = ["Soprano", "Alto", "Tenor", "Bass"]
VOICE_PROGRAMS = [52, 52, 52, 52]  # GM "Choir Aahs"
STEP_TICKS = 480 // STEPS_PER_QUARTER


def voice_tracks(music: symusic.Score) -> list[int] | None:
    """Indices of the four pitched tracks, soprano first; None unless exactly four."""
    idx = [i for i, t in enumerate(music.tracks) if len(t.notes) and not t.is_drum]
    if len(idx) != N_VOICES:
        return None
    mean = [float(music.tracks[i].notes.numpy()["pitch"].mean()) for i in idx]
    return [idx[k] for k in np.argsort(mean)[::-1]]


def notes_to_classes(notes: np.ndarray, n_steps: int, tpq: int) -> np.ndarray:
    """One voice's notes (symusic numpy dict) → classes per sixteenth step (0 = rest).
    Pitches outside the range are moved by octaves into it."""
    out = np.zeros(n_steps, np.int64)
    step = tpq / STEPS_PER_QUARTER
    s = np.round(notes["time"] / step).astype(np.int64)
    e = np.maximum(np.round((notes["time"] + notes["duration"]) / step).astype(np.int64), s + 1)
    p = notes["pitch"].astype(np.int64)
    while (p < PITCH_LO).any() or (p >= PITCH_HI).any():
        p = np.where(p < PITCH_LO, p + 12, np.where(p >= PITCH_HI, p - 12, p))
    for a, b, q in zip(s, e, p):
        if a < n_steps:
            out[a : min(b, n_steps)] = q - PITCH_LO + 1
    return out


def score_to_voices(score: Score) -> np.ndarray | None:
    """(4, T) classes, or None when the piece does not have exactly four voices."""
    music = score.music
    tracks = voice_tracks(music)
    if tracks is None:
        return None
    tpq = music.ticks_per_quarter
    n_steps = int(np.ceil(music.end() / (tpq / STEPS_PER_QUARTER)))
    return np.stack([notes_to_classes(music.tracks[i].notes.numpy(), n_steps, tpq) for i in tracks])


def runs(classes: np.ndarray, free: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """(start step, end step, class) of each run of equal non-rest classes, restricted to
    the ``free`` steps when given (a run is cut where a free stretch ends)."""
    T = len(classes)
    free = np.ones(T, bool) if free is None else free
    out = []
    t = 0
    while t < T:
        if not free[t] or classes[t] == 0:
            t += 1
            continue
        u = t + 1
        while u < T and free[u] and classes[u] == classes[t]:
            u += 1
        out.append((t, u, int(classes[t])))
        t = u
    return out


def voices_to_score(voices: np.ndarray, *, meta: Meta | None = None, qpm: float = 90.0,
                    time_signature: tuple[int, int] = (4, 4)) -> Score:
    """(4, T) classes → a four-track Score at 480 ticks per quarter."""
    music = symusic.Score(480)
    music.time_signatures.append(symusic.TimeSignature(0, *time_signature))
    music.tempos.append(symusic.Tempo(0, qpm=qpm))
    for v in range(voices.shape[0]):
        tr = symusic.Track(name=VOICE_NAMES[v] if v < 4 else f"Voice {v + 1}", program=VOICE_PROGRAMS[v % 4])
        for a, b, c in runs(voices[v]):
            tr.notes.append(symusic.Note(a * STEP_TICKS, (b - a) * STEP_TICKS, PITCH_LO + c - 1, 80))
        music.tracks.append(tr)
    return Score(music, meta or Meta())


def voices_to_multihot(voices: np.ndarray) -> np.ndarray:
    """(4, T) classes → (4, T, N_PITCHES) binary roll (rests are all-zero rows)."""
    V, T = voices.shape
    out = np.zeros((V, T, N_PITCHES), np.float32)
    v, t = np.nonzero(voices > 0)
    out[v, t, voices[v, t] - 1] = 1
    return out
