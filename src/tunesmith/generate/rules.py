"""Rules of four-part writing, applied to a model's distribution while it samples.

A four-voice sampler chooses each frame's voices in order — soprano, alto, tenor,
bass — and before each choice asks :meth:`FourPartRules.violations` which of the
candidate tokens (every pitch onset, ``Hold``, ``Rest``) would break a rule given
the voices already chosen in this frame and the previous slice (the sounding
pitches at the last onset, exactly as :mod:`tunesmith.evaluate.theory` counts):

- ``parallel_fifths`` / ``parallel_octaves``: two voices a perfect fifth (octave or
  unison) apart, modulo the octave, in both slices, both moving the same way;
- ``hidden_fifths`` / ``hidden_octaves``: the outer voices moving in similar motion
  into a perfect fifth/octave that was not there before, the soprano leaping;
- ``voice_crossing``: a voice sounding above a voice written above it;
- ``voice_overlap``: a voice moving above the previous note of the voice above it,
  or below the previous note of the voice below it;
- ``spacing``: soprano–alto or alto–tenor more than an octave apart;
- ``range``: a new note outside the voice's range (S C4–G5, A G3–D5, T C3–G4, B E2–C4);
- ``key``: a new note outside the key's scale and the chromatic tones the style uses
  (raised 6th and 7th in minor; the raised 4th — leading tone of the dominant — and
  the lowered 7th in major);
- ``cadence``: in the last bar, only notes of the tonic triad, the bass on the tonic.

Modes (``--rules``): ``strict`` masks every candidate that breaks a rule, and only
when the candidates left carry less than ``floor`` of the model's probability does
it fall back to penalties for that one choice (counted per rule in
:attr:`FourPartRules.relaxed`); ``soft`` always subtracts a penalty per broken rule
from the logits; ``off`` leaves the distribution alone. In every mode the rules a
chosen token broke are counted in :attr:`FourPartRules.broken`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from tunesmith.errors import ParameterError
from tunesmith.represent import satb

MODES = ("strict", "soft", "off")
RULES = ("parallel_fifths", "parallel_octaves", "hidden_fifths", "hidden_octaves", "voice_crossing",
         "voice_overlap", "spacing", "range", "key", "cadence")
RANGES = satb.RANGES
# Candidates for one voice, in this order: every pitch onset, then Hold, then Rest.
CANDIDATE_PITCHES = np.arange(satb.PITCH_LO, satb.PITCH_HI)
N_CAND = len(CANDIDATE_PITCHES) + 2
HOLD_I, REST_I = N_CAND - 2, N_CAND - 1


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ParameterError("rules", f"must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def style_pitch_classes(tonic: int, mode: str) -> set[int]:
    """The key's scale and the chromatic tones chorale harmony uses."""
    steps = (0, 2, 3, 5, 7, 8, 9, 10, 11) if mode == "minor" else (0, 2, 4, 5, 6, 7, 9, 10, 11)
    return {(tonic + s) % 12 for s in steps}


def candidate_tokens() -> np.ndarray:
    """Token ids of the candidates, in candidate order."""
    return np.concatenate([satb.PITCH0 + CANDIDATE_PITCHES - satb.PITCH_LO, [satb.HOLD, satb.REST]])


class FourPartRules:
    def __init__(self, mode: str = "strict", *, key: tuple[int, str] | None = None, penalty: float = 4.0,
                 floor: float = 0.01):
        self.mode = check_mode(mode)
        self.penalty = penalty
        self.floor = floor
        self.relaxed: Counter = Counter()
        self.broken: Counter = Counter()
        self.set_key(key)

    def set_key(self, key: tuple[int, str] | None) -> None:
        self.key = key
        if key is None:
            self._in_key = np.ones(len(CANDIDATE_PITCHES), bool)
            self._triad = np.ones(len(CANDIDATE_PITCHES), bool)
            self._tonic = np.ones(len(CANDIDATE_PITCHES), bool)
            return
        tonic, mode = key
        pcs = CANDIDATE_PITCHES % 12
        self._in_key = np.isin(pcs, sorted(style_pitch_classes(tonic, mode)))
        third = 3 if mode == "minor" else 4
        # a minor piece may end on the major triad (the Picardy third), as Bach's often do
        triad = {tonic % 12, (tonic + third) % 12, (tonic + 7) % 12} | ({(tonic + 4) % 12} if mode == "minor" else set())
        self._triad = np.isin(pcs, sorted(triad))
        self._tonic = pcs == tonic % 12

    # ------------------------------------------------------------------ the checks
    def violations(self, v: int, current: list[int], last_slice: np.ndarray, prev: np.ndarray, *,
                   final_bar: bool = False) -> np.ndarray:
        """(N_CAND, len(RULES)) bool: which rule each candidate for voice ``v`` breaks.

        ``current``: sounding pitches already chosen in this frame for voices 0..v-1 (−1 rest);
        ``last_slice``: the four sounding pitches at the last onset (−1 rest);
        ``prev``: the four sounding pitches in the previous frame (what ``Hold`` continues)."""
        P = CANDIDATE_PITCHES
        n = len(P)
        out = np.zeros((N_CAND, len(RULES)), bool)
        R = {r: i for i, r in enumerate(RULES)}
        # sounding pitch of each candidate (-1: rest), and whether it is a new note
        cand = np.concatenate([P, [prev[v], -1]]).astype(np.int64)
        onset = np.zeros(N_CAND, bool)
        onset[:n] = True
        a_v = int(last_slice[v])
        for u, c_u in enumerate(current):
            a_u = int(last_slice[u])
            if c_u < 0:
                continue
            snd = cand >= 0
            # crossing: a lower voice above a higher one
            out[:, R["voice_crossing"]] |= snd & (cand > c_u)
            if a_u >= 0 and a_v >= 0:
                du, dv = c_u - a_u, cand - a_v
                similar = snd & (du != 0) & (dv != 0) & (np.sign(dv) == np.sign(du))
                iv_a, iv_b = (a_u - a_v) % 12, (c_u - cand) % 12
                out[:, R["parallel_fifths"]] |= similar & (iv_a == 7) & (iv_b == 7)
                out[:, R["parallel_octaves"]] |= similar & (iv_a == 0) & (iv_b == 0)
                if u == 0 and v == 3 and abs(du) > 2:
                    out[:, R["hidden_fifths"]] |= similar & (iv_b == 7) & (iv_a != 7)
                    out[:, R["hidden_octaves"]] |= similar & (iv_b == 0) & (iv_a != 0)
            if u == v - 1 and v in (1, 2):
                out[:, R["spacing"]] |= snd & (c_u - cand > 12)
        # overlap: a new note above the previous note of the voice above / below the one below
        if v > 0 and last_slice[v - 1] >= 0:
            out[:n, R["voice_overlap"]] |= P > last_slice[v - 1]
        if v < 3 and last_slice[v + 1] >= 0:
            out[:n, R["voice_overlap"]] |= P < last_slice[v + 1]
        lo, hi = RANGES[v]
        out[:n, R["range"]] = (P < lo) | (P > hi)
        out[:n, R["key"]] = ~self._in_key
        if final_bar and self.key is not None:
            out[:n, R["cadence"]] = ~(self._tonic if v == 3 else self._triad)
        return out

    def adjust(self, logits: np.ndarray, viol: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, bool]:
        """Candidate logits (N_CAND,) after the rules (``valid``: the grammar's own mask), and
        whether strict mode had to fall back to penalties for this choice."""
        x = np.where(valid, logits, -np.inf)
        if self.mode == "off":
            return x, False
        soft = x - self.penalty * viol.sum(axis=1)
        if self.mode == "soft":
            return soft, False
        ok = valid & ~viol.any(axis=1)
        if ok.any():
            p = np.exp(x - np.max(x[valid]))
            p = p / p.sum()
            if p[ok].sum() >= self.floor:
                return np.where(ok, x, -np.inf), False
        return soft, True  # a mask would leave (next to) nothing: penalties for this one choice

    def record(self, viol_row: np.ndarray, relaxed: bool) -> None:
        for i in np.flatnonzero(viol_row):
            self.broken[RULES[i]] += 1
            if relaxed:
                self.relaxed[RULES[i]] += 1

    def report(self) -> dict:
        return {"rules": self.mode, "key": None if self.key is None else list(self.key),
                "relaxed": dict(self.relaxed), "broken": dict(self.broken),
                "n_relaxed": int(sum(self.relaxed.values()))}
