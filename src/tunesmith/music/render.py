"""Rendering a Score to audio with FluidSynth and a General MIDI SoundFont."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError
from tunesmith.music.score import Score


def default_soundfont() -> Path:
    """The General MIDI SoundFont that ships with pretty_midi (TimGM6mb.sf2)."""
    import pretty_midi

    return Path(os.path.dirname(pretty_midi.__file__)) / "TimGM6mb.sf2"


def check_soundfont(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(p, "no such SoundFont file")
    with open(p, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise BadInputError(p, "not a SoundFont 2 file (no RIFF/sfbk header)")
    return p


def synthesize(score: Score, *, sample_rate: int = 44100, soundfont: str | Path | None = None) -> np.ndarray:
    """Render with FluidSynth (through pretty_midi). Returns float32 mono audio in [-1, 1],
    shape (n_samples,), peak-normalised to 0.9 (silence stays silence)."""
    import pretty_midi

    sf2 = check_soundfont(soundfont) if soundfont else default_soundfont()
    pm = pretty_midi.PrettyMIDI(io.BytesIO(bytes(score.music.dumps_midi())))
    if not pm.instruments or all(len(i.notes) == 0 for i in pm.instruments):
        return np.zeros(int(sample_rate * 0.5), dtype=np.float32)
    from tunesmith.fileio import third_party_log

    with third_party_log("fluidsynth"):  # missing presets, "failed to allocate a synthesis process" …
        audio = pm.fluidsynth(fs=sample_rate, sf2_path=str(sf2))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (0.9 / peak)
    return audio.astype(np.float32)


AUDIO_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
                 ".mp3": ("MP3", "MPEG_LAYER_III")}


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write WAV (16-bit PCM), FLAC, OGG Vorbis or MP3 (by the extension) atomically: through
    a fresh temporary file in the same folder (never a predictable name that a planted link
    could redirect), renamed into place."""
    import soundfile as sf

    from tunesmith.fileio import fresh_temporary

    p = Path(path)
    ext = p.suffix.lower()
    if ext not in AUDIO_FORMATS:
        raise ValueError(f"unknown audio format {ext!r}")
    fmt, subtype = AUDIO_FORMATS[ext]
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = fresh_temporary(p)
    try:
        with os.fdopen(fd, "wb") as fh:
            sf.write(fh, audio, sample_rate, subtype=subtype, format=fmt)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV atomically."""
    return write_audio(path, audio, sample_rate)


def render_wav(score: Score, path: str | Path, *, sample_rate: int = 44100,
               soundfont: str | Path | None = None) -> Path:
    """Render ``score`` to a WAV file at ``path``."""
    return write_wav(path, synthesize(score, sample_rate=sample_rate, soundfont=soundfont), sample_rate)


def render_audio(score: Score, paths: list[Path], *, sample_rate: int = 44100,
                 soundfont: str | Path | None = None) -> list[Path]:
    """Render once, write every path (its extension names the format)."""
    audio = synthesize(score, sample_rate=sample_rate, soundfont=soundfont)
    return [write_audio(p, audio, sample_rate) for p in paths]
