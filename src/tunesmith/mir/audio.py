"""Audio analysis with librosa: tempo and beats, key from chroma, onsets, loudness and
(for a single line) a pitch track; the transcription (basic-pitch) makes the recording
a symbolic piece that the rest of the analysis reads.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunesmith.mir.keys import KEY_NAMES, correlations, rank_keys
from tunesmith.music.audio import (
    ANALYSIS_SR,
    basic_pitch_notes,
    estimate_tempo,
    load_audio,
    onset_clusters,
    recording_tuning,
)
from tunesmith.music.melody import SAME_ONSET_SECONDS

HOP = 512
@dataclass
class AudioAnalysis:
    path: str
    seconds: float
    tempo_bpm: float
    beats: np.ndarray  # seconds
    onsets: np.ndarray  # seconds
    key: str
    key_confidence: float
    key_candidates: list[tuple[str, float]]
    loudness: dict  # RMS in dBFS: mean, p95, max
    pitch_track: dict | None  # f0 in Hz per frame for a single line (None for polyphony)
    chroma: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((12, 0)))
    tuning_cents: float = 0.0  # how far the recording is tuned from A440 (music.audio.recording_tuning)
    frame_db: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # RMS per chroma frame, dBFS

    def to_dict(self) -> dict:
        d = {"file": self.path, "seconds": round(self.seconds, 3), "tempo_bpm": round(self.tempo_bpm, 2),
             "beats": [round(float(b), 3) for b in self.beats], "onsets": [round(float(o), 3) for o in self.onsets],
             "key": self.key, "key_confidence": round(self.key_confidence, 3),
             "key_candidates": [{"key": k, "score": round(s, 3)} for k, s in self.key_candidates],
             "loudness_dbfs": self.loudness, "tuning_cents": self.tuning_cents}
        if self.pitch_track is not None:
            d["pitch_track"] = self.pitch_track
        return d


def audio_key(chroma: np.ndarray) -> tuple[str, float, list[tuple[str, float]]]:
    """Key from a (12, frames) chromagram: Aarden profiles on the mean chroma, plus the
    lowest-energy-weighted final frames' strongest class as the final-tonic evidence."""
    h = chroma.mean(axis=1)
    s = correlations(h).copy()
    tail = chroma[:, -max(1, chroma.shape[1] // 20):].mean(axis=1)
    final = int(np.argmax(tail))
    s[final] += 0.1
    s[12 + final] += 0.1
    best, conf, cands = rank_keys(s)
    return KEY_NAMES[best], conf, cands


def analyze_audio(path: str | Path, *, max_minutes: float = 30.0, pitch_track: bool | None = None) -> AudioAnalysis:
    """Tempo, beats, key, onsets, loudness and — for a single line, or when asked — a pYIN pitch track."""
    import librosa

    y = load_audio(path, max_minutes=max_minutes)
    sr = ANALYSIS_SR
    onset_env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=HOP)
    tracked, beat_frames = librosa.beat.beat_track(onset_envelope=onset_env, sr=sr, hop_length=HOP)
    tracked = float(np.atleast_1d(tracked)[0])
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=HOP, units="time")
    # the tempo from the transcription's onsets (sharper than an onset envelope's peaks for
    # slow attacks; the transcription is kept, so analyze's own transcription reuses it)
    heard = basic_pitch_notes(path)
    note_onsets = np.array([n[0] for n in heard])
    tempo = estimate_tempo(note_onsets, tracked, notes=np.array(heard, float)) if len(note_onsets) >= 4 \
        else estimate_tempo(onsets, tracked)
    if len(note_onsets) >= 4:
        # the onsets reported are where the transcription's notes begin (those within 50 ms are one,
        # a chord's): a spectral-flux detector misses the slow attacks of bowed strings, organ, voices
        # and flute (on 24 held-out renders, onset F-measure at 50 ms 0.51 for librosa's detector,
        # 0.77 for these; strings 0.07 against 0.58; piano and guitar alike)
        onsets = onset_clusters(note_onsets, SAME_ONSET_SECONDS)
    if abs(tempo - tracked) / max(tracked, 1e-9) > 0.1:  # another reading: beats at that tempo
        _, beat_frames = librosa.beat.beat_track(onset_envelope=onset_env, sr=sr, hop_length=HOP, bpm=tempo)
    # the chroma's semitones where the recording's are: librosa's own estimate works on thirds of a
    # semitone, so it cannot tell 36 cents flat from 3 cents sharp, and a choir 36 cents flat came
    # out in B minor rather than G major; the tuning read on semitones (recording_tuning) can
    cents = recording_tuning(path)
    with warnings.catch_warnings():  # a recording of a few seconds is shorter than the lowest octaves'
        warnings.simplefilter("ignore", UserWarning)  # filters: librosa warns and pads, which is right
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=HOP, tuning=cents / 100)
    key, conf, cands = audio_key(chroma)
    rms = librosa.feature.rms(y=y, hop_length=HOP)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    loud = {"mean": round(float(20 * np.log10(max(np.sqrt((rms ** 2).mean()), 1e-10))), 2),
            "p95": round(float(np.percentile(db, 95)), 2), "max": round(float(db.max()), 2)}
    track = None
    if pitch_track is None:
        # one strong chroma class per frame most of the time: a single line
        top2 = np.sort(chroma, axis=0)[-2:]
        pitch_track = bool(np.median(top2[0] / np.maximum(top2[1], 1e-9)) < 0.5)
    if pitch_track:
        f0, voiced, _ = librosa.pyin(y, fmin=librosa.note_to_hz("C2"), fmax=librosa.note_to_hz("C7"), sr=sr,
                                     hop_length=HOP * 2)
        times = librosa.times_like(f0, sr=sr, hop_length=HOP * 2)
        track = {"hop_seconds": round(HOP * 2 / sr, 5), "times": [round(float(t), 3) for t in times],
                 "f0_hz": [round(float(f), 2) if v and np.isfinite(f) else None for f, v in zip(f0, voiced)]}
    beats = librosa.frames_to_time(beat_frames, sr=sr, hop_length=HOP)
    return AudioAnalysis(str(path), len(y) / sr, tempo, beats, np.asarray(onsets), key, conf, cands, loud, track,
                         chroma, cents, db)


def chroma_for_display(a: AudioAnalysis) -> np.ndarray:
    """The chromagram as drawn: each frame's chroma is scaled to its strongest class, so that
    silence (a recording's lead-in, an MP3's padding) drew as bright noise; frames are dimmed
    from full at 30 dB below the loudest frame to nothing at 50 dB below."""
    if not len(a.frame_db):
        return a.chroma
    n = min(a.chroma.shape[1], len(a.frame_db))
    gain = np.clip((a.frame_db[:n] - (a.frame_db.max() - 50.0)) / 20.0, 0.0, 1.0)
    return a.chroma[:, :n] * gain


def save_chromagram_png(a: AudioAnalysis, path: str | Path, *, downbeats=()) -> Path:
    """Chromagram with the beats marked (and the bar lines, where the meter was estimated), and
    the key in the title."""
    from tunesmith.music.keys import PITCH_CLASS_NAMES
    from tunesmith.music.plot import plt, save_figure

    fig, ax = plt.subplots(figsize=(12, 3.5))
    ext = [0, a.seconds, -0.5, 11.5]
    ax.imshow(chroma_for_display(a), aspect="auto", origin="lower", extent=ext, cmap="magma",
              interpolation="nearest", vmin=0.0, vmax=1.0)
    ax.set_yticks(range(12), PITCH_CLASS_NAMES)
    for b in a.beats:
        ax.axvline(b, color="cyan", lw=0.5, alpha=0.6)
    for b in downbeats:
        ax.axvline(b, color="white", lw=1.4, alpha=0.9)
    ax.set_xlabel("seconds")
    bars = " (bar lines white)" if len(downbeats) else ""
    ax.set_title(f"{Path(a.path).name}: chroma with beats{bars} — {a.key}, {a.tempo_bpm:.0f} bpm")
    fig.tight_layout()
    return save_figure(fig, path)
