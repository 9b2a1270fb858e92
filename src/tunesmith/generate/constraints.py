"""Constrained decoding for REMI event tokens.

A small state machine over token types allows, at every step, only tokens
that keep the sequence decodable (``Bar → TimeSig → Position → [Tempo] →
Program → Pitch → Duration → …``, positions increasing inside a bar), and
applies the musical controls: a fixed time signature, pitches inside a key's
scale, and an exact number of bars.
"""

from __future__ import annotations

import numpy as np

from tunesmith.represent.tokens import EventTokenizer


class RemiConstraint:
    def __init__(self, tok: EventTokenizer, *, bars: int, time_signature: str | None = None,
                 scale_pcs: set[int] | None = None, programs: set[int] | None = None,
                 max_tokens: int | None = None, end_on_tonic: bool = False, tonic: int | None = None,
                 guard=None, single_line: bool = False):
        self.tok = tok
        # a model of melodies (folk) writes one note per onset: no second note at a note's position
        self.single_line = single_line
        # the originality guard (generate/copyguard.py), or None: no pitch that would complete
        # eight notes of a training piece
        self.guard = guard
        self.onsets: list[float] = []  # of every note so far, in quarters from the first bar
        self.bar_start_q = 0.0
        self.bar_q = 4.0
        self.beat_q = 1.0  # quarters per position beat (the time signature's denominator)
        self.seen_bar = False
        self.copy_masked = 0  # pitch choices where the guard masked a candidate
        self.copy_relaxed = 0  # choices where every allowed pitch would have copied: left alone
        # the melodic rule (``--rules strict`` for event-token models): the piece may only end —
        # with EOS, or the Bar that would open one bar too many — right after a note on the
        # tonic (given, or estimated from the notes so far when the last bar begins)
        self.end_on_tonic = end_on_tonic
        self.tonic = tonic
        self.pitches: list[int] = []
        self.note_programs: list[int] = []  # the program of every note so far
        self.cur_program = -1
        self.pickup = False  # the piece began with an upbeat (then it has one bar more than asked)
        self.relaxed = 0
        self.bars = bars
        self.max_tokens = max_tokens or bars * 600
        V = tok.vocab_size
        types = tok.types
        self.mask_of = {t: types == t for t in ("Bar", "TimeSig", "Position", "Tempo", "Program", "Pitch", "Duration")}
        self.eos = np.zeros(V, bool)
        self.eos[tok.eos_id] = True
        self.pos_value = np.full(V, -1)
        self.pitch_class = np.full(V, -1)
        self.pitch_value = np.full(V, -1)
        self.program_value = np.full(V, -1)
        for i, n in enumerate(tok.names):
            if n.startswith("Position_"):
                self.pos_value[i] = int(n.split("_")[1])
            elif n.startswith("Program_"):
                self.program_value[i] = int(n.split("_")[1])
            elif n.startswith("Pitch_"):
                self.pitch_value[i] = int(n.split("_")[1])
                self.pitch_class[i] = self.pitch_value[i] % 12
        self.force_tonic = False
        self.ended = False  # the model ended the tune off the tonic and the tonic note was added: nothing more
        self.tonic_pitch = np.zeros(V, bool)
        self.pitch_ok = self.mask_of["Pitch"].copy()
        if scale_pcs is not None:
            for i, n in enumerate(tok.names):
                if n.startswith("Pitch_") and int(n.split("_")[1]) % 12 not in scale_pcs:
                    self.pitch_ok[i] = False
        self.program_ok = self.mask_of["Program"].copy()
        if programs:
            for i, n in enumerate(tok.names):
                if n.startswith("Program_") and int(n.split("_")[1]) not in programs:
                    self.program_ok[i] = False
        self.timesig_ok = self.mask_of["TimeSig"].copy()
        if time_signature is not None:
            tid = tok.tok.vocab.get(f"TimeSig_{time_signature}")
            if tid is not None:
                self.timesig_ok[:] = False
                self.timesig_ok[tid] = True
        # miditok's positions per beat (the denominator's note value) in the first beat range.
        self.res = max(r for (lo, _), r in tok.tok.config.beat_res.items() if lo == 0)
        self.bar_positions = 4 * self.res
        self.prev = "BOS"
        self.cur_pos = -1
        self.bars_done = 0
        self.n_new = 0
        self.forced_stops = 0

    def observe_prompt(self, ids) -> None:
        """Advance the state over prompt tokens without counting them as new bars."""
        for i in ids:
            self._advance(int(i))
        self.bars_done = 0
        self.n_new = 0

    def _advance(self, t: int) -> None:
        name = self.tok.names[t]
        typ = name.split("_", 1)[0]
        if typ == "Bar":
            self.bars_done += 1
            self.cur_pos = -1
            if self.seen_bar:
                self.bar_start_q += self.bar_q
            self.seen_bar = True
            if self.end_on_tonic and self.tonic is None and self.bars_done == self.bars and self.pitches:
                from tunesmith.music.keys import TUNE_MIN_NOTES, estimate_key, legato_line, tune_key

                if self.single_line and len(self.pitches) >= TUNE_MIN_NOTES:
                    # a tune's tonic by the tune reader (where the line rests), as analyze and
                    # score_key read it: on real tunes cut before their last bar it finds the
                    # stated tonic for 0.858 of the held-out ones, Krumhansl–Schmuckler 0.796
                    self.tonic = tune_key(legato_line(self.pitches, self.onsets, self.bar_start_q, self.bar_q))[0]
                else:
                    self.tonic = estimate_key(np.array(self.pitches))[0]
        elif typ == "Pitch":
            if not self.pitches and self.n_new > 0 and self.bars_done == 1 and self.cur_pos > 0:
                # an upbeat: the first bar is a pickup, not one of the bars asked for (as notation
                # counts them), so the phrases that follow it fill whole bars
                self.pickup = True
                self.bars += 1
            self.pitches.append(int(name.split("_")[1]))
            self.onsets.append(self._onset_q())
            self.note_programs.append(self.cur_program)
            if self.force_tonic:  # the note asked for has come: the tune ends on it
                self.force_tonic = False
                self.ended = True
        elif typ == "Program":
            self.cur_program = int(self.program_value[t])
        elif typ == "Position":
            self.cur_pos = int(self.pos_value[t])
        elif typ == "TimeSig":
            num, den = (int(x) for x in name.split("_")[1].split("/"))
            self.bar_positions = num * self.res
            self.beat_q = 4.0 / den
            self.bar_q = num * self.beat_q
            # One meter per piece: the first time signature (the primer's, or the first sampled) holds.
            self.timesig_ok[:] = False
            self.timesig_ok[t] = True
        if typ in ("Bar", "TimeSig", "Position", "Tempo", "Program", "Pitch", "Duration", "BOS"):
            self.prev = typ

    def allowed(self) -> np.ndarray:
        m = self.mask_of
        p = self.prev
        if p == "BOS":
            return m["Bar"].copy()
        if p == "Bar":
            return self.timesig_ok.copy()
        if p == "TimeSig":
            return m["Bar"] | self._later_positions()
        if p == "Position":
            return m["Tempo"] | self.program_ok
        if p == "Tempo":
            # the tempo is written at the bar's first position even where its first note comes
            # later: a tune with an upbeat is Position_0 Tempo Position_24 Program Pitch …
            return self.program_ok | self._later_positions()
        if p == "Program":
            if self.force_tonic and self.tonic is not None:  # the note that ends the tune lands on the tonic
                return self._unoriginal_masked(self._not_sounding(self.pitch_ok & self.tonic_pitch))
            return self._unoriginal_masked(self._not_sounding(self.pitch_ok.copy()))
        if p == "Pitch":
            return m["Duration"].copy()
        # after a Duration
        if self.ended:
            return self.eos.copy()
        out = self._later_positions() | m["Bar"]
        if not self.single_line:  # another note at this onset
            out |= self.program_ok
        if self.bars_done >= self.bars:
            out |= self.eos
            if self.end_on_tonic and self.tonic is not None and self.pitches and self.pitches[-1] % 12 != self.tonic % 12:
                later = self._later_positions()
                if later.any():
                    # not yet: one more note must come, at a later onset (never stacked on this one), on the tonic
                    self.force_tonic = True
                    self.tonic_pitch = self.mask_of["Pitch"] & (self.pitch_class == self.tonic % 12)
                    return later
                self.relaxed += 1  # no room left in the bar: end anyway, and say so
        return out

    def bars_progress(self) -> tuple[int, int]:
        """Bars begun and bars asked for, a pickup bar counted in neither."""
        return self.bars_done - int(self.pickup), self.bars - int(self.pickup)

    def _onset_q(self) -> float:
        return self.bar_start_q + max(self.cur_pos, 0) / self.res * self.beat_q

    def _not_sounding(self, ok: np.ndarray) -> np.ndarray:
        """``ok`` less the pitches this instrument has already struck at this onset: a note
        doubled in unison on one instrument is not music, it decodes to one note or a
        stuck key. Never empties ``ok`` (an instrument has 88 keys)."""
        here = self._onset_q()
        k = len(self.onsets) - 1
        while k >= 0 and abs(self.onsets[k] - here) < 1e-9:
            if self.note_programs[k] == self.cur_program:
                ok &= self.pitch_value != self.pitches[k]
            k -= 1
        return ok

    def _unoriginal_masked(self, ok: np.ndarray) -> np.ndarray:
        """``ok`` less the pitches that would complete a window of a training piece (unless that
        leaves none: then counted as a relaxation of the guard)."""
        if self.guard is None:
            return ok
        idx = np.flatnonzero(ok)
        bad = self.guard.copies(self.pitches, self.onsets, self._onset_q(), self.pitch_value[idx])
        if not bad.any():
            return ok
        if bad.all():
            self.copy_relaxed += 1
            return ok
        self.copy_masked += 1
        ok[idx[bad]] = False
        return ok

    def _later_positions(self) -> np.ndarray:
        return self.mask_of["Position"] & (self.pos_value > self.cur_pos) & (self.pos_value < self.bar_positions)

    def feed(self, t: int) -> bool:
        """Record a sampled token; False means generation ends here (token not kept)."""
        if t == self.tok.eos_id:
            return False
        if t == self.tok.bar_id and self.bars_done >= self.bars:
            return False  # this Bar would open bar N+1
        self.n_new += 1
        if self.n_new > self.max_tokens:
            self.forced_stops += 1
            return False
        self._advance(t)
        return True
