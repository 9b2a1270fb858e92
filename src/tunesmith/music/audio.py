"""Audio in: decoding with a bound, and audio-to-MIDI transcription.

Transcription is Spotify's **basic-pitch** (ICASSP 2022): a small polyphonic
note-and-pitch-bend model whose ONNX weights ship inside its pip package, run
here with onnxruntime, so nothing is downloaded and TensorFlow is not needed
(``scripts/setup.sh`` installs the package without its TensorFlow requirement).
It is instrument-agnostic and polyphonic, which is what a recording of a song,
a piano piece or a hummed melody needs; training our own on SoundFont renders
would only learn the SoundFont.

Every audio file is checked before it is decoded: size, then its declared
duration against ``Limits.max_minutes`` (decoding an hour of audio would hold
~600 MB of samples), then silence after decoding.
"""

from __future__ import annotations

import contextlib
import io
import logging
from functools import cache
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError

AUDIO_EXTS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
ANALYSIS_SR = 22050
SILENCE_DBFS = -60.0  # a file whose loudest 50 ms block is quieter than this is "silent"


def audio_duration(path: Path) -> float:
    """Declared duration in seconds, read from the header (no decoding)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile's errors are all "not readable audio"
        raise BadInputError(path, f"not readable audio: {str(e).splitlines()[0][:160]}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise BadInputError(path, "no audio samples in this file")
    return info.frames / info.samplerate


def load_audio(path: str | Path, *, max_minutes: float = 30.0, max_bytes: int = 512 * 2**20,
               sr: int = ANALYSIS_SR) -> np.ndarray:
    """Mono float32 samples at ``sr`` Hz; refuses a missing, oversized, over-long or silent file."""
    import librosa

    p = Path(path)
    if not p.exists():
        raise BadInputError(p, "no such file")
    size = p.stat().st_size
    if size == 0:
        raise BadInputError(p, "empty file (0 bytes)")
    if size > max_bytes:
        raise BadInputError(p, f"file is {size / 2**20:.0f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB")
    seconds = audio_duration(p)
    if seconds > max_minutes * 60:
        raise BadInputError(p, f"{seconds / 60:.1f} minutes of audio, over the limit of {max_minutes:g} "
                               "(raise it with --max-minutes)")
    try:
        y, _ = librosa.load(str(p), sr=sr, mono=True)
    except Exception as e:  # noqa: BLE001
        raise BadInputError(p, f"cannot decode audio: {type(e).__name__}: {str(e)[:160]}") from None
    if not len(y) or not np.isfinite(y).all():
        raise BadInputError(p, "no usable audio samples")
    block = max(1, sr // 20)
    n = len(y) // block * block or len(y)
    peak_rms = float(np.sqrt((y[:n].reshape(-1, min(block, n)) ** 2).mean(axis=1)).max())
    if 20 * np.log10(max(peak_rms, 1e-12)) < SILENCE_DBFS:
        raise BadInputError(p, f"silent (no 50 ms block louder than {SILENCE_DBFS:.0f} dBFS)")
    return y.astype(np.float32)


@contextlib.contextmanager
def _quiet():
    """basic-pitch logs a warning for each backend it does not find (TF, CoreML, TFLite) and
    prints a line per file: keep both off the user's terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


@cache
def _basic_pitch_model():
    with _quiet():
        from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
        from basic_pitch.inference import Model

        return Model(build_icassp_2022_model_path(FilenameSuffix.onnx))


def transcribe(path: str | Path, *, max_minutes: float = 30.0, onset_threshold: float = 0.5,
               frame_threshold: float = 0.3, min_note_ms: float = 58.0):
    """Transcribe an audio file to a :class:`~tunesmith.music.score.Score` (one piano track).

    Thresholds are basic-pitch's defaults. The tempo is librosa's beat-tracked tempo of the
    recording, so a quarter note in the score is a beat of the recording; the meter is 4/4
    (the transcription does not know where bars begin)."""
    import librosa
    import symusic

    from tunesmith.music.score import DEFAULT_TPQ, Meta, Score

    p = Path(path)
    y = load_audio(p, max_minutes=max_minutes)  # the checks (size, length, silence) before the model
    tempo, _ = librosa.beat.beat_track(y=y, sr=ANALYSIS_SR)
    qpm = float(np.clip(np.atleast_1d(tempo)[0], 30, 300)) or 120.0
    model = _basic_pitch_model()
    with _quiet():
        from basic_pitch.inference import predict

        _, pm, _ = predict(str(p), model, onset_threshold=onset_threshold,
                           frame_threshold=frame_threshold, minimum_note_length=min_note_ms)
    tpq = DEFAULT_TPQ
    music = symusic.Score(tpq)
    music.tempos.append(symusic.Tempo(0, qpm))
    music.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    track = symusic.Track("Transcription", 0, False)
    per_sec = tpq * qpm / 60
    for inst in pm.instruments:
        for n in sorted(inst.notes, key=lambda n: (n.start, n.pitch)):
            s = int(round(n.start * per_sec))
            d = max(1, int(round((n.end - n.start) * per_sec)))
            track.notes.append(symusic.Note(s, d, int(n.pitch), int(min(127, max(1, n.velocity)))))
    if not len(track.notes):
        raise BadInputError(p, "no notes were heard in this recording")
    music.tracks.append(track)
    return Score(music, Meta(title=p.stem, source=str(p), tempo=qpm, tags=["transcribed"]))
