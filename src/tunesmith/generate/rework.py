"""Harmonize a melody or infill chosen bars and voices of a four-voice piece, and write the
result as files: the one function behind ``tunesmith harmonize|infill`` and the studio."""

from __future__ import annotations

from pathlib import Path

from tunesmith.errors import ParameterError
from tunesmith.fileio import write_json
from tunesmith.generate.api import (
    check_not_taken,
    check_out_dir,
    load_model,
    output_path,
    parse_formats,
    write_formats,
)
from tunesmith.generate.base import INPUT_BARS, first_bars
from tunesmith.generate.chorale import MAX_PARTICLES, ChoraleTokenModel
from tunesmith.generate.rollmodels import CoconetModel, check_iterations, parse_bars, parse_voices
from tunesmith.music.io import read_pieces
from tunesmith.music.score import Score

COMMANDS = ("harmonize", "infill")


def rework(model, command: str, score: Score, *, temperature: float = 1.0, iterations: int | None = None,
           seed: int = 0, rules: str | None = None, bars: tuple[int, int] | None = None,
           voices: list[int] | None = None, melody_track: str | int | None = None, particles: int | None = None):
    """``command`` ('harmonize' or 'infill') applied to ``score`` by a loaded model."""
    if not temperature > 0:
        raise ParameterError("temperature", f"must be positive, got {temperature}")
    if iterations is not None:
        check_iterations(iterations)
    name = getattr(model, "name", "model")
    score, note = first_bars(score, INPUT_BARS, "melody" if command == "harmonize" else "piece")
    if note and bars is not None and bars[1] > INPUT_BARS:
        raise ParameterError("bars", f"infill reads the first {INPUT_BARS} bars of a piece; bars {bars[0]}-{bars[1]} "
                             "are beyond them")
    g = _rework(model, name, command, score, temperature=temperature, iterations=iterations, seed=seed,
                rules=rules, bars=bars, voices=voices, melody_track=melody_track, particles=particles)
    if note:
        g.report = {**(g.report or {}), "input": note}
    return g


def _rework(model, name, command, score, *, temperature, iterations, seed, rules, bars, voices, melody_track,
            particles=None):
    if isinstance(model, ChoraleTokenModel) and command == "harmonize":
        if iterations is not None:
            raise ParameterError("iterations", f"'{name}' samples left to right; iterations are for Coconet models")
        return model.harmonize(score, temperature=temperature, seed=seed, rules=rules or "strict",
                               melody_track=melody_track, **({"particles": particles} if particles is not None else {}))
    if particles is not None:
        raise ParameterError("particles", f"particles are for harmonizing with an SATB token model; '{name}' "
                             + ("infills by Gibbs sampling" if command == "infill" else "is a Coconet model (Gibbs sampling)"))
    if melody_track is not None and command != "harmonize":
        raise ParameterError("melody_track", "only harmonize takes a melody track")
    if not isinstance(model, CoconetModel):
        raise ParameterError("model", f"'{name}' cannot {command}: use a Coconet (cnn) model such as chorale-cnn"
                             + (" or an SATB token model" if command == "harmonize" else ""))
    if command == "harmonize":
        return model.harmonize(score, temperature=temperature, iterations=iterations or 96, seed=seed,
                               rules=rules or "strict", melody_track=melody_track)
    if bars is None:
        raise ParameterError("bars", "infill needs the bars to regenerate, e.g. 3-4")
    return model.infill(score, bars=bars, voices=voices, temperature=temperature, iterations=iterations or 96,
                        seed=seed, rules=rules or "strict")


def rework_to_files(command: str, model: str, source: str | Path, out: str | Path, *, piece: int = 1,
                    temperature: float = 1.0, iterations: int | None = None, seed: int = 0,
                    rules: str | None = None, bars: str | None = None, voices: str | None = None,
                    formats: str = "mid,wav,musicxml,png", force: bool = False, stem: str | None = None,
                    melody_track: str | None = None, tempo: float | None = None,
                    instruments: str | None = None, progress: bool = False, particles: int | None = None) -> dict:
    """Harmonize or infill piece ``piece`` (1-based) of ``source`` and write it beside a
    ``.json`` of every setting; every option is checked before any work. Returns that record."""
    if command not in COMMANDS:
        raise ParameterError("command", f"must be one of {', '.join(COMMANDS)}, got {command!r}")
    from tunesmith.music.arrange import arranged, check_tempo, parse_instruments

    check_tempo(tempo)
    programs = parse_instruments(instruments) if instruments else None
    fmts = parse_formats(formats)
    out = check_out_dir(out)
    if iterations is not None:
        check_iterations(iterations)
    if not temperature > 0:
        raise ParameterError("temperature", f"must be positive, got {temperature}")
    if particles is not None and not 1 <= particles <= MAX_PARTICLES:
        raise ParameterError("particles", f"must be between 1 and {MAX_PARTICLES}, got {particles}")
    bar_range = parse_bars(bars) if command == "infill" else None
    voice_list = parse_voices(voices) if command == "infill" else None
    pieces = read_pieces(source).scores
    if not 1 <= piece <= len(pieces):
        raise ParameterError("piece", f"{source} holds {len(pieces)} piece(s); got {piece}")
    base = out / f"{stem or Path(source).stem}-{command}-{seed:03d}"
    check_not_taken([base], fmts, force)
    mm = load_model(model)
    from tunesmith.progress import progress_bar

    with progress_bar(command, 1, enabled=progress):
        g = rework(mm, command, pieces[piece - 1], temperature=temperature, iterations=iterations, seed=seed,
                   rules=rules, bars=bar_range, voices=voice_list, melody_track=melody_track, particles=particles)
    out.mkdir(parents=True, exist_ok=True)
    files = write_formats(arranged(g.score, tempo=tempo, instruments=programs), base, fmts)
    from tunesmith import __version__

    settings = {"command": command, "model": model, "source": str(source), "piece": piece,
                "temperature": temperature, "iterations": iterations, "seed": seed}
    if command == "infill":
        settings.update(bars=bars, voices=voices or "all")
    if melody_track is not None:
        settings["melody_track"] = melody_track
    if particles is not None:
        settings["particles"] = particles
    if tempo is not None:
        settings["tempo"] = tempo
    if instruments:
        settings["instruments"] = instruments
    if rules is not None or g.report is not None:
        settings["rules"] = (g.report or {}).get("rules", rules)
    info = {"files": [str(f) for f in files], "key": g.key, "bars": g.bars, "notes": g.score.n_notes,
            "seed": seed, "source": str(source), "settings": settings, "tunesmith": __version__}
    if g.report is not None:
        info["rules"] = g.report
    write_json(output_path(base, ".json"), info)
    return info
