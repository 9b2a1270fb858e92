"""The MIR door: ``analyze`` a file of any kind (symbolic or audio)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import BadInputError
from tunesmith.mir.analysis import Analysis, analyze_score, save_analysis_png
from tunesmith.mir.audio import AudioAnalysis, analyze_audio, save_chromagram_png
from tunesmith.music.audio import AUDIO_EXTS, transcription_meter
from tunesmith.music.io import Limits, read_pieces
from tunesmith.music.meter import estimated_upbeat
from tunesmith.music.score import Score


@dataclass
class FileAnalysis:
    """The analysis of one file: the symbolic analysis (of the transcription, for audio) and,
    for audio, the signal analysis."""

    path: str
    score: Score
    symbolic: Analysis
    audio: AudioAnalysis | None = None
    piece: int = 1  # which tune of the file (1-based)
    pieces_in_file: int = 1

    def __getattr__(self, name: str):
        # a.key, a.chords, a.cadences …: the symbolic analysis's fields, as a user reaches for them
        if name != "symbolic" and "symbolic" in self.__dict__ and hasattr(self.symbolic, name):
            return getattr(self.symbolic, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict:
        d = {"file": self.path, **self.symbolic.to_dict()}
        if self.pieces_in_file > 1:  # a multi-tune file (ABC): which tune this is
            d.update(piece=self.piece, pieces_in_file=self.pieces_in_file, title=self.score.meta.title or None)
        if self.audio is not None:
            d["audio"] = self.audio.to_dict()
            d["transcribed"] = True
            m = transcription_meter(self.score)
            d["meter_assumed"] = m is None  # too few notes to read a meter from: 4/4 from the recording's start
            if m is not None:
                d["meter_estimated"] = m
        up = estimated_upbeat(self.score)
        if up is not None:  # a MIDI file's upbeat, written at time 0, read and moved to its place
            d["upbeat_estimated_quarters"] = up
        return d

    def downbeats(self) -> list[float]:
        """For a recording: the times (seconds) of its transcription's bar lines."""
        return recording_downbeats(self.score, self.audio.seconds) if self.audio is not None else []

    def save_pictures(self, folder: str | Path) -> list[Path]:
        """PNGs: the chord chart and key regions over the piano roll; for audio also the
        chromagram with beats."""
        out = Path(folder)
        stem = Path(self.path).stem
        paths = [save_analysis_png(self.score, self.symbolic, out / f"{stem}.analysis.png")]
        if self.audio is not None:
            paths.append(save_chromagram_png(self.audio, out / f"{stem}.chroma.png", downbeats=self.downbeats()))
        return paths


def recording_downbeats(score: Score, seconds: float) -> list[float]:
    """The times (seconds) of a transcription's bar lines over a recording ``seconds`` long (none
    where its meter was assumed)."""
    m = transcription_meter(score)
    if m is None:
        return []
    bar_s, first = m["bar_seconds"], m["first_bar_line_seconds"]
    return [round(first + k * bar_s, 3) for k in range(int((seconds - first) // bar_s) + 1) if first + k * bar_s >= 0]


def analyze(path: str | Path | Score, *, piece: int = 1, limits: Limits | None = None,
            meter: str | None = None) -> FileAnalysis:
    """Analyse a MIDI, MusicXML, ABC, kern or audio file (``piece``: which tune of a multi-tune
    file, 1-based), or a :class:`Score` in memory (a generated piece). Audio is analysed as a
    signal and transcribed for the symbolic part, its meter estimated unless ``meter`` (e.g.
    ``"3/4"``) says it; a score carries its own meter, and ``meter`` with one is refused. The
    result's fields are the symbolic analysis's (``a.key``, ``a.chords``, ``a.cadences``,
    ``a.melody`` …) and ``a.audio``."""
    from tunesmith.music.meter import check_meter

    is_audio = not isinstance(path, Score) and Path(path).suffix.lower() in AUDIO_EXTS
    check_meter(meter, recording=is_audio)
    if isinstance(path, Score):
        return FileAnalysis(path.meta.source or path.meta.title or "score", path, analyze_score(path))
    limits = limits or Limits()
    p = Path(path)
    audio = None
    if is_audio:
        audio = analyze_audio(p, max_minutes=min(limits.max_minutes, limits.max_audio_minutes))
    if is_audio and meter is not None:
        from tunesmith.music.audio import transcribe

        score = transcribe(p, max_minutes=min(limits.max_minutes, limits.max_audio_minutes), meter=meter)
        limits.check_score(p, score)
        n = 1
    else:
        res = read_pieces(p, limits=limits)
        n = len(res.scores)
        if not 0 < piece <= n:
            raise BadInputError(p, f"has {n} piece(s), numbered 1–{n}; no piece number {piece}")
        score = res.scores[piece - 1]
    return FileAnalysis(str(p), score, analyze_score(score), audio, piece, n)
