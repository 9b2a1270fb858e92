"""Voice-leading checks of four-part writing over SATB frame tokens, candidate by candidate.

One definition, used three ways: the rule layer (:class:`tunesmith.generate.rules.FourPartRules`)
masks or penalises what these checks flag while a model samples; a chorale model's
voice-leading head (:mod:`tunesmith.models.voicing`) weighs them with weights learned from the
corpus; and :func:`grid_positions` reads them off a real chorale to fit those weights. Each
check looks at one voice's candidates (every pitch onset, ``Hold``, ``Rest``) given the voices
already written in its frame (soprano first) and the previous slice (the sounding pitches
at the last onset, as :mod:`tunesmith.evaluate.theory` counts):

- ``parallel_fifths`` / ``parallel_octaves``: two voices a perfect fifth (octave or unison)
  apart, modulo the octave, in both slices, both moving the same way;
- ``hidden_fifths`` / ``hidden_octaves``: the outer voices moving in similar motion into a
  perfect fifth/octave that was not there before, the soprano leaping;
- ``voice_crossing``: a voice sounding above a voice written above it;
- ``voice_overlap``: a voice moving above the previous note of the voice above it, or below
  the previous note of the voice below it;
- ``spacing``: soprano–alto or alto–tenor more than an octave apart;
- ``range``: a new note outside the voice's range (S C4–G5, A G3–D5, T C3–G4, B E2–C4).
"""

from __future__ import annotations

import numpy as np

from tunesmith.represent import satb

VOICE_RULES = ("parallel_fifths", "parallel_octaves", "hidden_fifths", "hidden_octaves", "voice_crossing",
               "voice_overlap", "spacing", "range")
# Candidates for one voice, in this order: every pitch onset, then Hold, then Rest.
CANDIDATE_PITCHES = np.arange(satb.PITCH_LO, satb.PITCH_HI)
N_CAND = len(CANDIDATE_PITCHES) + 2
HOLD_I, REST_I = N_CAND - 2, N_CAND - 1
_R = {r: i for i, r in enumerate(VOICE_RULES)}


def candidate_tokens() -> np.ndarray:
    """Token ids of the candidates, in candidate order."""
    return np.concatenate([satb.PITCH0 + CANDIDATE_PITCHES - satb.PITCH_LO, [satb.HOLD, satb.REST]])


def voice_checks(v: int, current, last_slice, prev) -> np.ndarray:
    """(N_CAND, len(VOICE_RULES)) bool: which check each candidate for voice ``v`` fails.

    ``current``: sounding pitches already chosen in this frame for voices 0..v-1 (−1 rest);
    ``last_slice``: the four sounding pitches at the last onset (−1 rest);
    ``prev``: the four sounding pitches in the previous frame (what ``Hold`` continues)."""
    P = CANDIDATE_PITCHES
    n = len(P)
    out = np.zeros((N_CAND, len(VOICE_RULES)), bool)
    cand = np.concatenate([P, [prev[v], -1]]).astype(np.int64)  # sounding pitch of each candidate
    snd = cand >= 0
    a_v = int(last_slice[v])
    for u, c_u in enumerate(current):
        a_u = int(last_slice[u])
        if c_u < 0:
            continue
        out[:, _R["voice_crossing"]] |= snd & (cand > c_u)
        if a_u >= 0 and a_v >= 0:
            du, dv = c_u - a_u, cand - a_v
            similar = snd & (du != 0) & (dv != 0) & (np.sign(dv) == np.sign(du))
            iv_a, iv_b = (a_u - a_v) % 12, (c_u - cand) % 12
            out[:, _R["parallel_fifths"]] |= similar & (iv_a == 7) & (iv_b == 7)
            out[:, _R["parallel_octaves"]] |= similar & (iv_a == 0) & (iv_b == 0)
            if u == 0 and v == 3 and abs(du) > 2:
                out[:, _R["hidden_fifths"]] |= similar & (iv_b == 7) & (iv_a != 7)
                out[:, _R["hidden_octaves"]] |= similar & (iv_b == 0) & (iv_a != 0)
        if u == v - 1 and v in (1, 2):
            out[:, _R["spacing"]] |= snd & (c_u - cand > 12)
    if v > 0 and last_slice[v - 1] >= 0:
        out[:n, _R["voice_overlap"]] |= P > last_slice[v - 1]
    if v < 3 and last_slice[v + 1] >= 0:
        out[:n, _R["voice_overlap"]] |= P < last_slice[v + 1]
    lo, hi = satb.RANGES[v]
    out[:n, _R["range"]] = (P < lo) | (P > hi)
    return out


def grid_positions(ids: np.ndarray):
    """For a piece's SATB ids (meter token, then frames), each voice token the sampler would
    choose: yields (index of the token in ``ids``, voice, candidate index of the token,
    :func:`voice_checks` of the candidates there). Walks the frames as the sampler does —
    the previous slice is the sounding pitches at the last frame with an onset. A ``Hold``
    with nothing sounding (the grammar's own impossibility) is skipped."""
    grid = np.asarray(ids[1:]).reshape(-1, satb.FRAME)[:, 1:].T
    snd = satb.sounding(grid)
    cand = candidate_tokens()
    index = {int(t): i for i, t in enumerate(cand)}
    prev = np.full(4, -1)
    last_slice = np.full(4, -1)
    for t in range(grid.shape[1]):
        cur: list[int] = []
        for v in range(4):
            tok = int(grid[v, t])
            if tok in index and not (tok == satb.HOLD and prev[v] < 0):
                yield 1 + t * satb.FRAME + 1 + v, v, index[tok], voice_checks(v, cur, last_slice, prev)
            cur.append(int(snd[v, t]))
        prev = snd[:, t].copy()
        if (grid[:, t] >= satb.PITCH0).any():
            last_slice = prev.copy()
