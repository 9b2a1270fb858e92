"""Frame tokens: the exact bijection with a binary piano roll used for the
polyphonic benchmark.

Each time step becomes its active pitches in ascending order followed by an
end-of-frame token. A model that only proposes tokens allowed by
:func:`allowed_next` defines a proper distribution over binary frames, so the
sum of a frame's token NLLs is exactly −log p(frame | past).
"""

from __future__ import annotations

import numpy as np
import symusic

from tunesmith.music.score import Meta, Score

N_PITCHES = 88
LOWEST_PITCH = 21  # column j of the roll is MIDI pitch 21 + j
EOF = N_PITCHES  # end of frame
BOS = N_PITCHES + 1
VOCAB_SIZE = N_PITCHES + 2


def roll_to_tokens(roll: np.ndarray) -> np.ndarray:
    """(T, 88) binary roll → 1-D token array (no BOS)."""
    roll = np.asarray(roll) > 0
    if roll.ndim != 2 or roll.shape[1] != N_PITCHES:
        raise ValueError(f"expected a (T, {N_PITCHES}) roll, got {roll.shape}")
    t_idx, p_idx = np.nonzero(roll)  # row-major: sorted by time, then pitch
    counts = roll.sum(axis=1)
    out = np.empty(len(p_idx) + roll.shape[0], dtype=np.int64)
    # Position of each frame's EOF: its own pitches plus all earlier frames' tokens.
    eof_pos = np.cumsum(counts + 1) - 1
    is_eof = np.zeros(len(out), dtype=bool)
    is_eof[eof_pos] = True
    out[is_eof] = EOF
    out[~is_eof] = p_idx
    del t_idx
    return out


def tokens_to_roll(tokens: np.ndarray) -> np.ndarray:
    """Inverse of :func:`roll_to_tokens` (BOS ignored); a trailing partial frame is kept."""
    toks = [int(t) for t in tokens if int(t) != BOS]
    frames: list[np.ndarray] = []
    cur = np.zeros(N_PITCHES, dtype=np.uint8)
    dirty = False
    for t in toks:
        if t == EOF:
            frames.append(cur)
            cur = np.zeros(N_PITCHES, dtype=np.uint8)
            dirty = False
        else:
            cur[t] = 1
            dirty = True
    if dirty:
        frames.append(cur)
    return np.stack(frames) if frames else np.zeros((0, N_PITCHES), dtype=np.uint8)


def allowed_next(prev: int) -> np.ndarray:
    """Boolean mask over the vocabulary of tokens allowed after ``prev``:
    a pitch above the previous pitch of this frame, or end of frame."""
    mask = np.zeros(VOCAB_SIZE, dtype=bool)
    mask[EOF] = True
    start = prev + 1 if 0 <= prev < N_PITCHES else 0
    mask[start:N_PITCHES] = True
    return mask


def allowed_mask_table() -> np.ndarray:
    """(VOCAB_SIZE, VOCAB_SIZE) table: row ``prev`` is :func:`allowed_next(prev)`."""
    return np.stack([allowed_next(p) for p in range(VOCAB_SIZE)])


def roll_to_score(roll: np.ndarray, *, steps_per_quarter: int = 1, tpq: int = 480,
                  program: int = 0, meta: Meta | None = None) -> Score:
    """Binary (T, 88) roll → Score; consecutive active frames of a pitch become one note."""
    roll = np.asarray(roll) > 0
    music = symusic.Score(tpq)
    track = symusic.Track(name="Piano roll", program=program)
    step = tpq // steps_per_quarter
    padded = np.pad(roll, ((1, 1), (0, 0)))
    d = np.diff(padded.astype(np.int8), axis=0)
    for j in range(N_PITCHES):
        on = np.nonzero(d[:, j] == 1)[0]
        off = np.nonzero(d[:, j] == -1)[0]
        for a, b in zip(on, off):
            track.notes.append(symusic.Note(int(a * step), int((b - a) * step), LOWEST_PITCH + j, 80))
    track.notes.sort()
    music.tracks.append(track)
    return Score(music, meta or Meta())


def score_to_roll(score: Score, *, steps_per_quarter: int = 1) -> np.ndarray:
    """Score → binary (T, 88) roll on a grid of ``steps_per_quarter`` (all tracks merged)."""
    from tunesmith.represent.pianoroll import score_to_pianoroll

    pr = score_to_pianoroll(score, steps_per_quarter=steps_per_quarter,
                            pitch_range=(LOWEST_PITCH, LOWEST_PITCH + N_PITCHES))
    return pr.frames.any(axis=0).astype(np.uint8)
