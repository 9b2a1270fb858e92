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
- ``range``: a new note outside the voice's range (S C4–G5, A G3–D5, T C3–G4, B E2–C4)
  — these eight are :func:`tunesmith.represent.voicing.voice_checks`, which the chorale
  sampler's learned voice-leading weights read too;
- ``key``: a new note outside the key's scale and the chromatic tones the style uses
  (raised 6th and 7th in minor; the raised 4th — leading tone of the dominant — in
  major), unless it is a step (one or two semitones, :data:`CHROMATIC_STEP`) from the
  voice's previous note or that note again (a chromatic passing or neighbour tone, or the
  leading tone of a tonicized chord approached by step; Coconet's :class:`RollRules`: a
  semitone only);
- ``cadence``: at the end an authentic cadence (:func:`cadence_plan` says where): the
  dominant or its seventh chord over its root, then the tonic chord over the tonic (a
  minor piece may end on the major chord; over the dominant an upper voice may hold a
  suspension or, off the beat, take a passing or neighbour note); and on the first beat
  of a new piece whose key is given, the tonic chord. The token sampler, Coconet
  (:class:`RollRules`) and the GAN's decoder use the same plan and the same chords
  (Coconet without the passing notes: its Gibbs sampler redraws cells out of order, so a
  cell's previous note is not settled when it is drawn).

Modes (``--rules``): ``strict`` masks every candidate that breaks a rule. Only when the
notes left (a rest, which breaks nothing, does not count) carry less than ``floor`` of
the model's probability does it relax, for that one choice, and then one rule at a time
in :data:`RELAX_ORDER` — the order of how often Bach himself breaks them (spacing and
crossing first, parallel octaves last) — keeping the mask of every rule not yet given
up, and retrying each parallel with a floor a hundred times lower before giving it up;
only when even the parallels alone leave nothing does it fall back to penalties. What a
relaxed choice broke is counted per rule in :attr:`FourPartRules.relaxed`. ``soft``
always subtracts a penalty per broken rule from the logits; ``off`` leaves the
distribution alone. In every mode the rules a chosen token broke are counted in
:attr:`FourPartRules.broken`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from tunesmith.errors import ParameterError
from tunesmith.represent import satb
from tunesmith.represent.voicing import (  # noqa: F401  (re-exported: the samplers' candidate order)
    CANDIDATE_PITCHES,
    HOLD_I,
    N_CAND,
    REST_I,
    VOICE_RULES,
    candidate_tokens,
    voice_checks,
)

MODES = ("strict", "soft", "off")
RULES = VOICE_RULES + ("key", "cadence")  # the voice-leading checks (tunesmith.represent.voicing) first
RANGES = satb.RANGES
# When a strict mask leaves nothing, the rules are given up one at a time in this order:
# by how often Bach's chorales break them (per 100 beats: spacing 3.8, crossing 3.7,
# range 1.9, hidden fifths 0.56, hidden octaves 0.26, parallel fifths 0.22, octaves 0.10;
# about 8% of his notes are outside the style's scale; every chorale ends on the tonic).
# The key rule lets a note outside the key's scale (and the chromatic tones it allows) through
# when it is at most this many semitones from the voice's previous note: a chromatic passing or
# neighbour note, the leading tone of a tonicized chord, the flat seventh of V7/IV reached by
# step — or the same note struck again. In Bach's training chorales (counted from their stated
# keys) 1.85 notes in 100 fall outside scale and tones: 57% of them reached by a whole tone,
# 8% restruck, 35% by a leap (the bass's most); allowing only a semitone left the sampler none
# of the first two.
CHROMATIC_STEP = 2
RELAX_ORDER = ("spacing", "voice_crossing", "voice_overlap", "range", "key", "hidden_fifths",
               "hidden_octaves", "cadence", "parallel_fifths", "parallel_octaves")
assert sorted(RELAX_ORDER) == sorted(RULES)
# TIERS[k]: the rules still enforced after giving up the first k of RELAX_ORDER
TIERS = [np.isin(RULES, RELAX_ORDER[k:]) for k in range(len(RELAX_ORDER))]
# (tier, fraction of the floor) in the order strict mode tries them: a tier that still forbids
# a parallel, or the final cadence, is tried again with a floor a hundred times lower before
# that rule is given up (a model that does not know the piece ends gives the cadence's
# chords little mass, and every chorale of Bach's ends with one)
_AGAIN = {RELAX_ORDER.index("cadence"), len(TIERS) - 2, len(TIERS) - 1}
STEPS = [(k, f) for k in range(len(TIERS)) for f in ((1.0, 0.01) if k in _AGAIN else (1.0,))]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ParameterError("rules", f"must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def style_pitch_classes(tonic: int, mode: str) -> set[int]:
    """The key's scale and the chromatic tones chorale harmony uses."""
    steps = (0, 2, 3, 5, 7, 8, 9, 10, 11) if mode == "minor" else (0, 2, 4, 5, 6, 7, 9, 11)
    return {(tonic + s) % 12 for s in steps}


def cadence_plan(meter: str, n_frames: int, melody: np.ndarray | None = None,
                 tonic: int | None = None) -> tuple[int, int]:
    """The frames where the final cadence's dominant and tonic chords begin (equal: no
    dominant window). A new piece in a meter of two or four beats (or compound duple) ends
    on the tonic from its last bar's second half, with the dominant in the bar's first half —
    Bach's 4/4 chorales place their last chord on the third beat three times in five (149 of
    243 training chorales; the rest on the downbeat) and the bass before it is the dominant
    in three of four; in other meters the tonic takes the whole last bar and the dominant
    its last beat before. A melody being harmonized sets both: the tonic from its last
    note, the dominant under the note before when that note belongs to the dominant
    seventh chord of the key (else no dominant is asked)."""
    n = int(meter.split("/")[0])
    per_bar = satb.bar_steps(meter)
    beat = satb.beat_steps(meter)
    if melody is None:
        tonic_at = n_frames - (per_bar // 2 if n % 2 == 0 else per_bar)
        dominant_at = n_frames - per_bar if n % 2 == 0 else tonic_at - beat
        return max(dominant_at, 0), max(tonic_at, 0)
    onsets = np.flatnonzero(np.asarray(melody[:n_frames]) >= satb.PITCH0)
    if not len(onsets) or onsets[-1] < n_frames - per_bar:
        return n_frames - per_bar, n_frames - per_bar
    tonic_at = int(onsets[-1])
    before = onsets[onsets < tonic_at]
    if not len(before) or before[-1] < tonic_at - per_bar or tonic is None:
        return tonic_at, tonic_at
    pitch = int(melody[before[-1]]) - satb.PITCH0 + satb.PITCH_LO
    if (pitch - tonic) % 12 not in (7, 11, 2, 5):
        return tonic_at, tonic_at
    return int(before[-1]), tonic_at


def cadence_pitch_classes(tonic: int, mode: str) -> dict[str, set[int]]:
    """The pitch classes each voice may take in the final cadence: ``tonic_bass`` and
    ``tonic`` (the upper voices: the tonic triad, in minor with the major third too — the
    Picardy third Bach often ends on), ``dominant_bass`` (its root) and ``dominant`` (the
    dominant seventh chord, the leading tone raised in minor too)."""
    third = 3 if mode == "minor" else 4
    return {"tonic_bass": {tonic % 12},
            "tonic": {tonic % 12, (tonic + third) % 12, (tonic + 7) % 12} | ({(tonic + 4) % 12} if mode == "minor" else set()),
            "dominant_bass": {(tonic + 7) % 12},
            "dominant": {(tonic + 7) % 12, (tonic + 11) % 12, (tonic + 2) % 12, (tonic + 5) % 12}}


class FourPartRules:
    def __init__(self, mode: str = "strict", *, key: tuple[int, str] | None = None, penalty: float = 4.0,
                 floor: float = 0.01):
        self.mode = check_mode(mode)
        self.penalty = penalty
        self.floor = floor
        self.relaxed: Counter = Counter()
        self.broken: Counter = Counter()
        self.redrawn = 0  # chords drawn unmasked and rejected (a sampler that redraws counts them)
        self.masked_frames = 0  # frames that fell back to masking voice by voice
        self.set_key(key)

    def set_key(self, key: tuple[int, str] | None) -> None:
        self.key = key
        if key is None:
            self._in_key = np.ones(len(CANDIDATE_PITCHES), bool)
            self._triad = np.ones(len(CANDIDATE_PITCHES), bool)
            self._tonic = np.ones(len(CANDIDATE_PITCHES), bool)
            self._dominant = self._dominant_bass = self._tonic
            return
        tonic, mode = key
        pcs = CANDIDATE_PITCHES % 12
        self._in_key = np.isin(pcs, sorted(style_pitch_classes(tonic, mode)))
        c = cadence_pitch_classes(tonic, mode)
        self._triad = np.isin(pcs, sorted(c["tonic"]))
        self._tonic = np.isin(pcs, sorted(c["tonic_bass"]))
        self._dominant = np.isin(pcs, sorted(c["dominant"]))
        self._dominant_bass = np.isin(pcs, sorted(c["dominant_bass"]))

    # ------------------------------------------------------------------ the checks
    def violations(self, v: int, current: list[int], last_slice: np.ndarray, prev: np.ndarray, *,
                   final_bar: bool | str = False, on_beat: bool = True) -> np.ndarray:
        """(N_CAND, len(RULES)) bool: which rule each candidate for voice ``v`` breaks.

        ``final_bar``: True (or ``"tonic"``) where the final tonic chord sounds, ``"dominant"``
        on the chord before it (an authentic cadence: the dominant, or its seventh chord, over
        its root). No voice rests there, and a voice may hold a note into them only when it belongs
        to the chord (the bass: its root) — except an upper voice over the dominant, which may
        hold a suspension, and, off the beat (``on_beat`` False), take a passing or neighbour
        note: a step of one or two semitones from the note it sounds, in the key.

        ``current``: sounding pitches already chosen in this frame for voices 0..v-1 (−1 rest);
        ``last_slice``: the four sounding pitches at the last onset (−1 rest);
        ``prev``: the four sounding pitches in the previous frame (what ``Hold`` continues)."""
        P = CANDIDATE_PITCHES
        n = len(P)
        out = np.zeros((N_CAND, len(RULES)), bool)
        R = {r: i for i, r in enumerate(RULES)}
        out[:, : len(VOICE_RULES)] = voice_checks(v, current, last_slice, prev)  # as the sampler's voicing weights read them
        a_v = int(last_slice[v])
        # a chromatic note a step from the voice's previous one (or that note again) is a chromatic
        # passing or neighbour tone, or the leading tone of a tonicized chord: the style's own
        # chromaticism (see CHROMATIC_STEP)
        out[:n, R["key"]] = ~self._in_key & ~((a_v >= 0) & (np.abs(P - a_v) <= CHROMATIC_STEP))
        if final_bar and self.key is not None:
            ok = ((self._dominant_bass if v == 3 else self._dominant) if final_bar == "dominant" else
                  (self._tonic if v == 3 else self._triad))
            if final_bar == "dominant" and not on_beat and v < 3 and prev[v] >= 0:
                ok = ok | (self._in_key & np.isin(np.abs(P - int(prev[v])), (1, 2)))
            out[:n, R["cadence"]] = ~ok
            out[REST_I, R["cadence"]] = True  # every voice sounds in the cadence's chords
            # a held note must belong to the chord too — in the bass always, above it in the
            # final chord (over the dominant an upper voice may hold a suspension)
            if prev[v] >= 0 and (v == 3 or final_bar != "dominant"):
                out[HOLD_I, R["cadence"]] = not ok[int(prev[v]) - int(P[0])]
        return out

    def adjust(self, logits: np.ndarray, viol: np.ndarray, valid: np.ndarray, *,
               ordered: bool = True) -> tuple[np.ndarray, bool]:
        """Candidate logits (N_CAND,) after the rules (``valid``: the grammar's own mask), and
        whether strict mode had to relax for this choice. ``ordered=False``: the full mask or
        else penalties, no rule given up alone — for a decoder that takes the likeliest
        candidate (the GAN's), where a rest, which breaks nothing, is the better escape."""
        x = np.where(valid, logits, -np.inf)
        if self.mode == "off":
            return x, False
        soft = x - self.penalty * viol.sum(axis=1)
        if self.mode == "soft":
            return soft, False
        p = np.exp(x - np.max(x[valid]))
        p = p / p.sum()
        # every rule first, then give them up one at a time; before giving up a parallel, once
        # more with a floor a hundred times lower (a confident model would otherwise walk
        # into the parallel it wants)
        for k, floor in (STEPS if ordered else STEPS[:1]):
            kept = TIERS[k]
            ok = valid & ~viol[:, kept].any(axis=1)
            # a rest never breaks a rule, so it does not count as something left: a mask that
            # leaves only silence would fill the music with rests
            notes = ok.copy()
            notes[REST_I] = False
            if notes.any() and p[notes].sum() >= self.floor * floor:
                return np.where(ok, x, -np.inf), k > 0 or floor < 1
        return soft, True  # even the parallels alone leave (next to) nothing: penalties

    def record(self, viol_row: np.ndarray, relaxed: bool) -> None:
        for i in np.flatnonzero(viol_row):
            self.broken[RULES[i]] += 1
            if relaxed:
                self.relaxed[RULES[i]] += 1

    def report(self) -> dict:
        return {"rules": self.mode, "key": None if self.key is None else list(self.key),
                "relaxed": dict(self.relaxed), "broken": dict(self.broken),
                "n_relaxed": int(sum(self.relaxed.values())),
                **({"redrawn_chords": self.redrawn, "masked_frames": self.masked_frames}
                   if self.redrawn or self.masked_frames else {})}


# --------------------------------------------------------------------------- the same rules for Coconet


class RollRules:
    """The rules of :class:`FourPartRules` for Coconet's blocked Gibbs sampling over a
    four-voice roll ``x`` (B, 4, T) of classes (0 = rest, k = MIDI ``pitch_lo + k − 1``).

    Every round, each cell's candidate pitches are checked against the current notes of
    the other voices at the same step and of all voices one step before and after (a
    change of class is a motion: the roll merges repeated notes): parallel fifths and
    octaves into and out of the step, hidden fifths/octaves between the outer voices,
    crossing, spacing, range and key. ``strict`` masks what breaks a rule unless that
    leaves less than ``floor`` of the cell's probability; then it gives rules up in
    :data:`RELAX_ORDER` as :class:`FourPartRules` does (then penalties), ``soft``
    penalises, ``off`` does nothing. Cells redrawn in the same round are checked against
    each other's previous values, so a violation can survive a round; the annealed rounds
    that follow redraw few cells at a time, and :meth:`report` counts what is left.

    ``cadence``: the steps where the final dominant and tonic chords begin
    (:func:`cadence_plan`; a new piece only): from there every voice sounds a note of that
    chord (:func:`cadence_pitch_classes`; the bass its root)."""

    def __init__(self, mode: str = "strict", *, key: tuple[int, str] | None = None, pitch_lo: int = 36,
                 n_classes: int = 47, penalty: float = 4.0, floor: float = 0.01,
                 cadence: tuple[int, int] | None = None, keys: list[tuple[int, str]] | None = None):
        import torch

        self.mode = check_mode(mode)
        self.penalty, self.floor = penalty, floor
        self.pitch_lo, self.n_classes = pitch_lo, n_classes
        self.key = key
        self.cadence = cadence
        self._pcs = None  # (B, 12) bool: the style's pitch classes per piece, once known
        self.keys: list[tuple[int, str]] | None = keys  # each piece's (tonic, mode), once known
        self._keys_given = keys is not None
        self.cand = torch.arange(n_classes)
        self.cand_pitch = torch.where(self.cand > 0, pitch_lo + self.cand - 1, torch.full_like(self.cand, -1))
        self.calls = 0

    def _pitches(self, x):
        import torch

        return torch.where(x > 0, self.pitch_lo + x - 1, torch.full_like(x, -1))

    def _key_mask(self, xp):
        import torch

        B = xp.shape[0]
        if self._pcs is None or self._pcs.shape[0] != B:
            rows, keys = [], []
            for b in range(B):
                if self.keys is not None and len(self.keys) == B:
                    tonic, mode = self.keys[b]
                elif self.key is not None:
                    tonic, mode = self.key
                else:
                    from tunesmith.music.keys import estimate_key

                    p = xp[b][xp[b] >= 0].numpy()
                    tonic, mode = (estimate_key(p)[:2]) if len(p) else (0, "major")
                m = torch.zeros(12, dtype=torch.bool)
                m[sorted(style_pitch_classes(tonic, mode))] = True
                rows.append(m)
                keys.append((int(tonic), mode))
            self._pcs = torch.stack(rows)
            self.keys = keys
        return self._pcs

    def _cadence_bad(self, B: int, T: int):
        """(B, V, T, C) bool: the candidates the final cadence forbids (None without one)."""
        import torch

        if self.cadence is None or self.keys is None:
            return None
        if self.key is None and not self._keys_given and self.calls < 2:
            return None  # the key is not known before the first full draw
        d_at, t_at = self.cadence
        pc = (self.cand_pitch % 12).clamp(min=0)
        rest = self.cand_pitch < 0
        bad = torch.zeros(B, 4, T, self.n_classes, dtype=torch.bool)
        for b, (tonic, mode) in enumerate(self.keys):
            sets = cadence_pitch_classes(tonic, mode)
            for v in range(4):
                for lo, hi, name in ((d_at, t_at, "dominant"), (t_at, T, "tonic")):
                    if hi <= lo:
                        continue
                    allowed = torch.zeros(12, dtype=torch.bool)
                    allowed[sorted(sets[f"{name}_bass" if v == 3 else name])] = True
                    bad[b, v, lo:hi] = (rest | ~allowed[pc])[None, :]
        return bad

    def violations(self, x) -> dict:
        """Per rule, (B, V, T, C) bool: candidate class c at cell (b, v, t) breaks it."""
        import torch

        B, V, T = x.shape
        xp = self._pitches(x)
        P = self.cand_pitch.view(1, 1, 1, -1)  # (1,1,1,C)
        snd = P >= 0
        pad = torch.full((B, V, 1), -1, dtype=xp.dtype)
        prev = torch.cat([pad, xp[..., :-1]], -1)  # (B,V,T) each voice one step before
        nxt = torch.cat([xp[..., 1:], pad], -1)
        out = {r: torch.zeros(B, V, T, self.n_classes, dtype=torch.bool) for r in RULES}
        for v in range(V):
            Pv = P[:, 0]  # (1,1,C) → broadcast over (B,T,C)
            own_prev = prev[:, v].unsqueeze(-1)
            own_next = nxt[:, v].unsqueeze(-1)
            moves_in = snd[:, 0] & (own_prev >= 0) & (Pv != own_prev)
            moves_out = snd[:, 0] & (own_next >= 0) & (own_next != Pv)
            for u in range(V):
                if u == v:
                    continue
                cu, pu, nu = xp[:, u].unsqueeze(-1), prev[:, u].unsqueeze(-1), nxt[:, u].unsqueeze(-1)

                def ic(a_other, a_v, upper_is_other=u < v):  # (upper − lower) mod 12
                    return (a_other - a_v) % 12 if upper_is_other else (a_v - a_other) % 12

                u_in = (cu >= 0) & (pu >= 0) & (cu != pu)
                same_in = torch.sign(Pv - own_prev) == torch.sign(cu - pu)
                before, after = ic(pu, own_prev), ic(cu, Pv)
                sim_in = moves_in & u_in & same_in
                u_out = (cu >= 0) & (nu >= 0) & (nu != cu)
                same_out = torch.sign(own_next - Pv) == torch.sign(nu - cu)
                now, then = ic(cu, Pv), ic(nu, own_next)
                sim_out = moves_out & u_out & same_out
                for cls, name in ((7, "parallel_fifths"), (0, "parallel_octaves")):
                    out[name][:, v] |= (sim_in & (before == cls) & (after == cls)) | \
                        (sim_out & (now == cls) & (then == cls))
                if {u, v} == {0, 3}:
                    sop_leap = (Pv - own_prev).abs() > 2 if v == 0 else (cu - pu).abs() > 2
                    for cls, name in ((7, "hidden_fifths"), (0, "hidden_octaves")):
                        out[name][:, v] |= sim_in & sop_leap & (after == cls) & (before != cls)
                above = cu >= 0
                if u < v:
                    out["voice_crossing"][:, v] |= above & snd[:, 0] & (Pv > cu)
                else:
                    out["voice_crossing"][:, v] |= above & snd[:, 0] & (Pv < cu)
                if abs(u - v) == 1 and min(u, v) in (0, 1):
                    out["spacing"][:, v] |= above & snd[:, 0] & ((Pv - cu).abs() > 12)
            lo, hi = RANGES[v]
            out["range"][:, v] = (snd & ((P < lo) | (P > hi)))[:, 0].expand(B, T, -1)
            pcs = self._key_mask(xp)  # (B, 12)
            pc = (self.cand_pitch % 12).clamp(min=0)
            bad_key = ~pcs[:, pc] & (self.cand_pitch >= 0)  # (B, C)
            # a semitone only: Coconet's figures were measured so, and the wider CHROMATIC_STEP of
            # the token sampler (2026-12-07) has not been measured with it
            by_semitone = (own_prev >= 0) & ((P[:, 0] - own_prev).abs() == 1)  # (B, T, C)
            out["key"][:, v] = bad_key[:, None, :].expand(B, T, -1) & ~by_semitone
        cad = self._cadence_bad(B, T)
        if cad is not None:
            out["cadence"] = cad
        return out

    def __call__(self, x, mask, logits):
        """Gibbs hook: the logits (B, V, T, C) after the rules."""
        import torch

        self.calls += 1
        if self.mode == "off":
            return logits
        if self.key is None and self.calls == 2 and not self._keys_given:
            self._pcs = self.keys = None  # the key of each piece, estimated from its first full draw
        viol = self.violations(x)
        count = sum(v.int() for v in viol.values())
        soft = logits - self.penalty * count
        if self.mode == "soft":
            return soft
        # every rule where that leaves the cell its floor; elsewhere (few cells) the first of
        # STEPS, as FourPartRules.adjust tries them
        p = torch.softmax(logits, dim=-1)
        bad_all = count > 0
        out = logits.masked_fill(bad_all, float("-inf"))
        failing = (p * ~bad_all).sum(-1) < self.floor
        if not failing.any():
            return out
        idx = failing.nonzero(as_tuple=True)
        sub_p, sub_logits, sub_out = p[idx], logits[idx], soft[idx]
        bad_by_tier = {}
        bad = torch.zeros_like(sub_p, dtype=torch.bool)
        for k in reversed(range(len(TIERS))):  # parallel octaves alone, then one more rule each
            bad = bad | viol[RELAX_ORDER[k]][idx]
            bad_by_tier[k] = bad
        for k, floor in reversed(STEPS):
            ok_mass = (sub_p * ~bad_by_tier[k]).sum(-1, keepdim=True)
            sub_out = torch.where(ok_mass >= self.floor * floor, sub_logits.masked_fill(bad_by_tier[k], float("-inf")),
                                  sub_out)
        out[idx] = sub_out
        return out

    def report(self, x, free) -> dict:
        """Which rules the final roll still breaks, counted over the written cells where a
        voice moves (strict: each one a relaxation)."""
        import torch

        viol = self.violations(x)
        chosen = x.unsqueeze(-1)
        pitched = free & (x > 0)
        prev = torch.cat([torch.full_like(x[..., :1], -1), x[..., :-1]], -1)
        onset = pitched & (x != prev)
        broken = {}
        for r, v in viol.items():
            n = int((v.gather(-1, chosen).squeeze(-1) & onset).sum())
            if n:
                broken[r] = n
        total = int(sum(broken.values()))
        key = self.key or (self.keys[0] if self.keys and len(self.keys) == 1 else None)  # asked, or estimated
        return {"rules": self.mode, "key": list(key) if key else None, "broken": broken,
                "relaxed": broken if self.mode == "strict" else {},
                "n_relaxed": total if self.mode == "strict" else 0}
