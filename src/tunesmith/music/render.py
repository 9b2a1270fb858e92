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
    audio = pm.fluidsynth(fs=sample_rate, sf2_path=str(sf2))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (0.9 / peak)
    return audio.astype(np.float32)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV atomically."""
    import soundfile as sf

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    sf.write(str(tmp), audio, sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, p)
    return p


def render_wav(score: Score, path: str | Path, *, sample_rate: int = 44100,
               soundfont: str | Path | None = None) -> Path:
    """Render ``score`` to a WAV file at ``path``."""
    return write_wav(path, synthesize(score, sample_rate=sample_rate, soundfont=soundfont), sample_rate)
