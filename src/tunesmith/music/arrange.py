"""Tempo and instruments chosen by the musician: ``--tempo`` and ``--instruments`` of
generate, harmonize, infill and render, applied to a finished score."""

from __future__ import annotations

from tunesmith.errors import ParameterError
from tunesmith.music.score import Score

# short names people type, beside the 128 General MIDI names pretty_midi knows
ALIASES = {"piano": 0, "organ": 19, "guitar": 24, "bass": 32, "strings": 48, "choir": 52, "voice": 52,
           "brass": 61, "sax": 65, "recorder": 74, "whistle": 78}


def parse_instruments(spec: str) -> list[int]:
    """'piano' / 'violin,viola,cello,contrabass' / '40,41,42,43' → General MIDI programs."""
    import pretty_midi

    out = []
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            raise ParameterError("instruments", f"an empty name in '{spec}'")
        if item.isdigit():
            if not 0 <= int(item) <= 127:
                raise ParameterError("instruments", f"a General MIDI program is 0–127, got {item}")
            out.append(int(item))
            continue
        key = item.lower()
        if key in ALIASES:
            out.append(ALIASES[key])
            continue
        try:
            out.append(int(pretty_midi.instrument_name_to_program(item.title() if item.islower() else item)))
        except ValueError:
            names = [pretty_midi.program_to_instrument_name(p) for p in range(128)]
            near = [n for n in names if key in n.lower()][:4]
            raise ParameterError("instruments", f"unknown instrument '{item}'" + (
                f"; did you mean {', '.join(near)}?" if near else "; give a General MIDI name or a program 0–127")) from None
    return out


def check_tempo(tempo: float | None) -> None:
    if tempo is not None and not 10 <= tempo <= 400:
        raise ParameterError("tempo", f"quarter notes per minute, 10–400, got {tempo:g}")


def arranged(score: Score, *, tempo: float | None = None, instruments: list[int] | None = None) -> Score:
    """A copy at ``tempo`` (one tempo for the whole piece) with the non-drum tracks, in order,
    on ``instruments`` (a single instrument goes to every track; tracks beyond the list keep
    theirs; more instruments than tracks is refused)."""
    import symusic

    check_tempo(tempo)
    if tempo is None and not instruments:
        return score
    music = score.music.copy()
    if tempo is not None:
        music.tempos.clear()
        music.tempos.append(symusic.Tempo(0, qpm=float(tempo)))
    if instruments:
        tracks = [t for t in music.tracks if not t.is_drum]
        if len(instruments) > 1 and len(instruments) > len(tracks):
            raise ParameterError("instruments", f"{len(instruments)} instruments for {len(tracks)} parts")
        for i, t in enumerate(tracks):
            if len(instruments) == 1 or i < len(instruments):
                t.program = instruments[0] if len(instruments) == 1 else instruments[i]
    meta = score.meta
    if tempo is not None:
        from dataclasses import replace

        meta = replace(meta, tempo=float(tempo))
    return Score(music, meta)
