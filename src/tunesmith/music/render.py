"""Rendering a Score to audio with FluidSynth and a General MIDI SoundFont."""

from __future__ import annotations

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


BLOCK = 32_768  # samples rendered at a time: memory does not grow with the piece's length


def render_blocks(score: Score, *, sample_rate: int = 44100, soundfont: str | Path | None = None):
    """FluidSynth (pyfluidsynth, the library pretty_midi renders with) driven event by event:
    yields float32 mono blocks of at most :data:`BLOCK` samples, the whole piece plus one
    second of release. Tracks share a channel per (program, drums); beyond the 15 melodic
    channels of one synthesizer, further synthesizers are mixed in. Unlike
    ``pretty_midi.fluidsynth`` (one full-length float64 array per instrument, summed), the
    memory used does not depend on the length of the piece."""
    import fluidsynth

    from tunesmith.fileio import third_party_log
    from tunesmith.progress import report

    sf2 = check_soundfont(soundfont) if soundfont else default_soundfont()
    music = score.music.to("second")
    tracks = [t for t in music.tracks if len(t.notes)]
    if not tracks:
        yield np.zeros(int(sample_rate * 0.5), dtype=np.float32)
        return
    slots: dict[tuple[bool, int], tuple[int, int]] = {}  # (drum, program) → (synth, channel)
    for t in tracks:
        key = (bool(t.is_drum), int(t.program))
        if key not in slots:
            if key[0]:
                slots[key] = (0, 9)
            else:
                n = sum(1 for k in slots if not k[0])
                slots[key] = (n // 15, [c for c in range(16) if c != 9][n % 15])
    n_synths = 1 + max(s for s, _ in slots.values())
    events = []  # (seconds, order, synth, kind, channel, a, b): note-offs first at equal times
    for t in tracks:
        syn, ch = slots[(bool(t.is_drum), int(t.program))]
        for nt in t.notes:
            events.append((nt.time, 1, syn, "on", ch, int(nt.pitch), int(nt.velocity)))
            events.append((nt.time + max(nt.duration, 0.0), 0, syn, "off", ch, int(nt.pitch), 0))
        for c in t.controls:
            events.append((c.time, 0, syn, "cc", ch, int(c.number), int(c.value)))
        for pb in t.pitch_bends:
            events.append((pb.time, 0, syn, "bend", ch, int(pb.value), 0))
    events.sort(key=lambda e: (e[0], e[1]))
    end = events[-1][0] + 1.0
    with third_party_log("fluidsynth"):  # missing presets, "failed to allocate a synthesis process" …
        synths = []
        for _ in range(n_synths):
            fs = fluidsynth.Synth(samplerate=float(sample_rate))
            synths.append((fs, fs.sfload(str(sf2))))
        for (drum, program), (syn, ch) in slots.items():
            fs, sfid = synths[syn]
            if drum:
                if fs.program_select(ch, sfid, 128, program) == -1:
                    fs.program_select(ch, sfid, 128, 0)
            else:
                fs.program_select(ch, sfid, 0, program)
        try:
            done = 0

            def until(seconds: float):
                nonlocal done
                target = int(round(seconds * sample_rate))
                while done < target:
                    n = min(BLOCK, target - done)
                    block = np.zeros(n, dtype=np.float32)
                    for fs, _ in synths:
                        block += fs.get_samples(n)[::2].astype(np.float32) / 32768.0
                    done += n
                    yield block
                report(min(seconds, end), end, "seconds rendered")

            for when, _, syn, kind, ch, a, b in events:
                yield from until(when)
                fs = synths[syn][0]
                if kind == "on":
                    fs.noteon(ch, a, b)
                elif kind == "off":
                    fs.noteoff(ch, a)
                elif kind == "cc":
                    fs.cc(ch, a, b)
                else:
                    fs.pitch_bend(ch, a)
            yield from until(end)
        finally:
            for fs, _ in synths:
                fs.delete()


def synthesize(score: Score, *, sample_rate: int = 44100, soundfont: str | Path | None = None) -> np.ndarray:
    """The whole rendering in memory (for short pieces and analysis): float32 mono in [-1, 1],
    peak-normalised to 0.9 (silence stays silence). Files are written by :func:`render_audio`
    block by block instead."""
    audio = np.concatenate(list(render_blocks(score, sample_rate=sample_rate, soundfont=soundfont)))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (0.9 / peak)).astype(np.float32) if peak > 0 else audio


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
    return render_audio(score, [Path(path)], sample_rate=sample_rate, soundfont=soundfont)[0]


def render_audio(score: Score, paths: list[Path], *, sample_rate: int = 44100,
                 soundfont: str | Path | None = None) -> list[Path]:
    """Render once, block by block, into a float32 scratch file beside the first output, then
    write every path (its extension names the format) peak-normalised to 0.9, again block by
    block: memory stays the same for a minute or three hours of music. Each output appears
    whole (a fresh temporary renamed into place) or not at all."""
    import soundfile as sf

    from tunesmith.fileio import fresh_temporary
    paths = [Path(p) for p in paths]
    for p in paths:
        if p.suffix.lower() not in AUDIO_FORMATS:
            raise ValueError(f"unknown audio format {p.suffix!r}")
        p.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = fresh_temporary(paths[0], ".render.wav")
    peak = 0.0
    try:
        # open file objects, not names: soundfile cannot encode a name that is not UTF-8
        with os.fdopen(fd, "w+b") as raw:
            with sf.SoundFile(raw, "w", samplerate=sample_rate, channels=1, subtype="FLOAT", format="WAV") as out:
                for block in render_blocks(score, sample_rate=sample_rate, soundfont=soundfont):
                    out.write(block)
                    peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
            gain = 0.9 / peak if peak > 0 else 1.0
            for p in paths:
                fmt, subtype = AUDIO_FORMATS[p.suffix.lower()]
                fd, tmp = fresh_temporary(p)
                try:
                    raw.seek(0)
                    with os.fdopen(fd, "wb") as fh, sf.SoundFile(fh, "w", samplerate=sample_rate, channels=1,
                                                                 subtype=subtype, format=fmt) as dst:
                        for block in sf.blocks(raw, blocksize=BLOCK * 4, dtype="float32"):
                            dst.write(block * gain)
                    os.replace(tmp, p)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
    finally:
        Path(scratch).unlink(missing_ok=True)
    return paths
