"""A studio piece on disk: one folder with the MIDI, the WAV (the project's synthesizer),
the MusicXML, the engraved score as SVG (Verovio), the piano roll PNG and the analysis;
built in a hidden folder and renamed into place whole, so a half-written piece is never
served. And who may see which piece."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import or_, select

from tunesmith.fileio import tunesmith_home
from tunesmith.music.score import Score
from tunesmith.store.models import Piece

FORMATS = {"mid": "audio/midi", "wav": "audio/wav", "musicxml": "application/vnd.recordare.musicxml+xml",
           "png": "image/png", "svg": "image/svg+xml", "gan.wav": "audio/wav", "chroma.png": "image/png"}


def studio_home() -> Path:
    return tunesmith_home() / "studio"


def pieces_dir() -> Path:
    return studio_home() / "pieces"


def engrave(musicxml: Path) -> str:
    """The score as one SVG (Verovio; page height fitted to the music)."""
    import verovio

    tk = verovio.toolkit()
    tk.setOptions({"pageWidth": 2100, "adjustPageHeight": True, "scale": 40, "footer": "none", "header": "none",
                   "breaks": "auto"})
    if not tk.loadData(musicxml.read_text()):
        raise ValueError("Verovio could not read the MusicXML")
    pages = [tk.renderToSVG(p) for p in range(1, tk.getPageCount() + 1)]
    if len(pages) == 1:
        return pages[0]
    # several pages: stack them in one SVG document
    return "<svg xmlns='http://www.w3.org/2000/svg' class='pages'>" + "".join(pages) + "</svg>"


def nearest_classes(score: Score, texture: str | None) -> dict:
    """The bundled classifiers' nearest class and its probability (``tunesmith classify``): the
    composer of a piece in several voices, the Essen region and the folk collection of a tune.
    Their classes are closed sets — the nearest, not a verdict — so a piece of fewer than
    :data:`~tunesmith.mir.classify.MIN_NOTES` pitched notes, which says too little, gets none."""
    from tunesmith.errors import TunesmithError
    from tunesmith.mir.classify import MIN_NOTES, load_classifier, pitched_notes

    if pitched_notes(score) < MIN_NOTES:
        return {}
    if "transcribed" in score.meta.tags and texture != "melody":
        # the classifiers learned scores; a transcription of several voices carries the overtones
        # and octave stops it heard as notes, and they mislead them (a Bach chorale played on the
        # organ came out "Beethoven 1.00"): none is named
        return {}
    out = {}
    for task in (("region", "collection") if texture == "melody" else ("composer",)):
        try:
            clf = load_classifier(task)
        except TunesmithError:  # a bundled classifier missing from this install: that line is left out
            continue
        p = clf.predict_piece(score)
        k = int(np.argmax(p))
        out[task] = {"class": clf.classes[k], "probability": round(float(p[k]), 3)}
    return out


def summary(score: Score) -> tuple[dict, dict]:
    """What the piece page shows of the analysis (the full analysis is in analysis.json)."""
    from tunesmith.mir.analysis import analyze_score

    a = analyze_score(score).to_dict()
    key = a.get("key") or {}
    chords = [c.get("roman") or c.get("chord") for c in a.get("chords", [])][:64]
    short = {"key": key.get("key") or key.get("name"), "confidence": key.get("confidence"), "meter": a.get("meter"),
             "tempo_qpm": a.get("tempo_qpm"), "bars": a.get("bars"), "texture": a.get("texture"),
             "chords": chords, "cadences": a.get("cadences", [])[:12],
             "melody": {k: v for k, v in (a.get("melody") or {}).items() if not isinstance(v, (list, dict))},
             "classes": nearest_classes(score, a.get("texture"))}
    if key.get("modal"):  # a tune in a church mode: "A mixolydian" (its key, A major, stays the key)
        short["modal"] = key["modal"]
    if "transcribed" in score.meta.tags:  # a recording's bars are a reading of it
        from tunesmith.music.audio import transcription_meter

        m = transcription_meter(score)
        short["meter_note"] = (f"estimated from the recording, confidence {m['confidence']:.2f}" if m and not m["given"]
                               else "as given" if m
                               else "as given, bars from the recording's start" if "meter:given-from-start" in score.meta.tags
                               else "assumed: too few notes to estimate it")
    else:
        from tunesmith.music.meter import estimated_upbeat

        up = estimated_upbeat(score)
        if up:  # a MIDI file's upbeat, written at time 0, read and placed by the reader
            short["meter_note"] = f"an upbeat of {up:g} quarter note(s) read from the notes: MIDI writes it at time 0"
    return short, a


def recording_summary(recording: Path, score: Score, png: Path, name: str = "") -> dict:
    """What the piece page shows of a recording the piece was transcribed from (``tunesmith
    analyze``'s audio part): its length, tempo, key from chroma, tuning and loudness; and its
    chromagram with the beats and the transcription's bar lines, drawn to ``png``."""
    from dataclasses import replace

    from tunesmith.mir.api import recording_downbeats
    from tunesmith.mir.audio import analyze_audio, save_chromagram_png

    a = analyze_audio(recording, pitch_track=False)
    # titled with the name it was uploaded as, not the name it is kept under
    save_chromagram_png(replace(a, path=name or recording.name), png, downbeats=recording_downbeats(score, a.seconds))
    return {"seconds": round(a.seconds, 1), "tempo_bpm": round(a.tempo_bpm, 1), "key": a.key,
            "key_confidence": round(a.key_confidence, 3), "tuning_cents": a.tuning_cents,
            "loudness_dbfs": a.loudness["mean"], "beats": len(a.beats), "onsets": len(a.onsets)}


def write_piece(score: Score, *, work: Path | None = None, recording: Path | None = None,
                recording_name: str = "") -> tuple[Path, dict]:
    """Write every file of a piece into a new folder under :func:`pieces_dir`; returns the
    folder and the analysis summary. ``recording``: the audio the score was transcribed from
    (uploaded as ``recording_name``), whose own analysis and chromagram (``piece.chroma.png``)
    join the piece's."""
    from tunesmith.generate.api import write_formats

    root = pieces_dir()
    root.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex[:16]
    tmp = work or root / f".tmp-{name}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        write_formats(score, tmp / "piece", ["mid", "wav", "musicxml", "png"])
        (tmp / "piece.svg").write_text(engrave(tmp / "piece.musicxml"))
        short, full = summary(score)
        if recording is not None:
            short["recording"] = full["recording"] = recording_summary(recording, score, tmp / "piece.chroma.png",
                                                                       recording_name)
        (tmp / "analysis.json").write_text(json.dumps(full, default=str))
        from tunesmith.mir.features import piece_features

        np.save(tmp / "features.npy", piece_features(score))  # for "similar pieces" (the MIR feature layer)
        final = root / name
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, short


def visible(listener_id: int | None):
    """A WHERE clause: the pieces a listener may see (the corpus, public pieces, their own)."""
    cond = or_(Piece.owner_id.is_(None), Piece.public.is_(True))
    if listener_id is not None:
        cond = or_(cond, Piece.owner_id == listener_id)
    return cond


def find_visible(session, piece_id: int, listener_id: int | None) -> Piece | None:
    return session.scalar(select(Piece).where(Piece.id == piece_id, visible(listener_id)))


def piece_file(piece: Piece, fmt: str) -> Path | None:
    """The file of one of :data:`FORMATS` for a studio piece (None for corpus pieces and
    missing files); the path is built from the piece's own folder, never from user input."""
    if fmt not in FORMATS or not piece.path:
        return None
    folder = Path(piece.path).parent
    if folder.parent != pieces_dir():
        return None
    f = folder / f"piece.{fmt}"
    return f if f.is_file() else None


def similar_by_features(target: Piece, candidates: list[Piece], n: int = 10) -> list[tuple[Piece, float]]:
    """The candidates nearest to ``target`` by cosine similarity of their standardised MIR
    feature vectors (the ones saved with each studio piece)."""
    def feats(p: Piece):
        if not p.path:
            return None
        f = Path(p.path).parent / "features.npy"
        return np.load(f, allow_pickle=False) if f.is_file() else None

    t = feats(target)
    rows = [(p, feats(p)) for p in candidates if p.id != target.id]
    rows = [(p, x) for p, x in rows if x is not None and x.shape == getattr(t, "shape", None)]
    if t is None or not rows:
        return []
    x = np.vstack([t] + [x for _, x in rows]).astype(float)
    mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)
    x = np.where(np.isfinite(x), x, np.nan_to_num(mean))
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 1e-9, sd, 1.0)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)
    sims = z[1:] @ z[0]
    order = np.argsort(-sims)[:n]
    return [(rows[i][0], float(sims[i])) for i in order]
