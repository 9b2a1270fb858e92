"""An NSynth-like data set of single instrument notes, rendered here with FluidSynth.

For each chosen General MIDI program × MIDI pitch × velocity one note is rendered:
held for ``hold`` seconds, then released, in a mono clip of ``length`` samples at
``sample_rate`` (defaults: 16 kHz and 16384 samples, WaveGAN's size). Clips are
peak-normalised per program so that loudness still follows velocity.

Layout of a data set folder::

    dataset.json        parameters, programs, counts, split sizes, SoundFont sha256
    programs/NNN.npz    every clip of one program (kept, so adding programs renders only those)
    train.npz valid.npz test.npz   audio (N, length) int16 and labels (program, family, pitch, velocity)
    manifest.jsonl      one line per clip: split, program, family, pitch, velocity, index in its split

Clips are split 80/10/10 by a hash of (program, pitch, velocity), so a clip keeps its
split when programs or pitches are added.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError, OptionError
from tunesmith.fileio import atomic_write_text, write_npz

GM_FAMILIES = ["piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
               "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects"]
# Short names users can pass to --instrument (the GM program numbers, 0-based).
INSTRUMENTS = {"piano": 0, "vibraphone": 11, "organ": 19, "guitar": 24, "nylon-guitar": 24, "steel-guitar": 25,
               "bass": 33, "violin": 40, "cello": 42, "strings": 48, "trumpet": 56, "horn": 60, "sax": 65,
               "oboe": 68, "clarinet": 71, "flute": 73}
DEFAULT_PROGRAMS = (0, 24, 40, 73)  # piano, nylon guitar, violin, flute: four GM families
SPLITS = ("train", "valid", "test")


@dataclass
class AudioDataParams:
    programs: list[int] = field(default_factory=lambda: list(DEFAULT_PROGRAMS))
    pitch_lo: int = 36
    pitch_hi: int = 84  # inclusive
    velocities: list[int] = field(default_factory=lambda: [50, 80, 110])
    sample_rate: int = 16000
    length: int = 16384
    hold: float = 0.75

    def check(self) -> None:
        if not self.programs or any(not 0 <= p <= 127 for p in self.programs):
            raise OptionError("--programs", "give General MIDI programs between 0 and 127")
        if not 0 <= self.pitch_lo <= self.pitch_hi <= 127:
            raise OptionError("--pitches", f"{self.pitch_lo}-{self.pitch_hi} is not a MIDI pitch range (0-127)")
        if not self.velocities or any(not 1 <= v <= 127 for v in self.velocities):
            raise OptionError("--velocities", "give velocities between 1 and 127")
        if not 4000 <= self.sample_rate <= 48000:
            raise OptionError("--sample-rate", f"must be between 4000 and 48000, got {self.sample_rate}")
        if not 1024 <= self.length <= 10 * self.sample_rate:
            raise OptionError("--length", f"must be between 1024 samples and 10 s, got {self.length}")
        if not 0 < self.hold < self.length / self.sample_rate:
            raise OptionError("--hold", f"must be positive and shorter than the clip, got {self.hold}")

    @property
    def pitches(self) -> list[int]:
        return list(range(self.pitch_lo, self.pitch_hi + 1))

    def render_key(self, sf_sha: str) -> dict:
        d = asdict(self)
        d.pop("programs")
        return {**d, "soundfont_sha256": sf_sha}


def split_of(program: int, pitch: int, velocity: int) -> str:
    h = int(hashlib.sha256(f"{program}:{pitch}:{velocity}".encode()).hexdigest()[:8], 16) / 2**32
    return "train" if h < 0.8 else "valid" if h < 0.9 else "test"


def render_note(synth, channel: int, pitch: int, velocity: int, p: AudioDataParams) -> np.ndarray:
    """One note from a started FluidSynth synth: float32 mono (length,)."""
    hold = int(p.hold * p.sample_rate)
    synth.noteon(channel, pitch, velocity)
    a = np.asarray(synth.get_samples(hold), dtype=np.float32)
    synth.noteoff(channel, pitch)
    b = np.asarray(synth.get_samples(p.length - hold), dtype=np.float32)
    synth.all_sounds_off(channel)
    synth.get_samples(p.sample_rate // 10)  # let the voice die before the next note
    st = np.concatenate([a, b]).reshape(-1, 2)  # interleaved stereo
    return st.mean(axis=1) / 32768.0


def render_program(program: int, p: AudioDataParams, soundfont: Path) -> np.ndarray:
    """All pitches × velocities of one program: (n_pitches, n_velocities, length) float32."""
    import fluidsynth

    from tunesmith.music.io import quiet_c_output

    with quiet_c_output():
        synth = fluidsynth.Synth(samplerate=float(p.sample_rate), **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        sfid = synth.sfload(str(soundfont))
    if sfid == -1:
        raise BadInputError(soundfont, "FluidSynth could not load this SoundFont")
    synth.program_select(0, sfid, 0, program)
    out = np.zeros((len(p.pitches), len(p.velocities), p.length), np.float32)
    for i, pitch in enumerate(p.pitches):
        for j, vel in enumerate(p.velocities):
            out[i, j] = render_note(synth, 0, pitch, vel, p)
    synth.delete()
    peak = float(np.abs(out).max())
    return out * (0.9 / peak) if peak > 0 else out


def build(out: str | Path, p: AudioDataParams, *, soundfont: str | Path | None = None,
          progress: bool = True) -> dict:
    """Render what is missing, then write the split files and the manifest."""
    from tqdm import tqdm

    from tunesmith.music.dataset import sha256_file
    from tunesmith.music.render import check_soundfont, default_soundfont

    p.check()
    sf2 = check_soundfont(soundfont) if soundfont else default_soundfont()
    sf_sha = sha256_file(sf2)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError("--out", f"'{out}' exists and is not a folder")
    (out / "programs").mkdir(parents=True, exist_ok=True)
    key = p.render_key(sf_sha)
    info_path = out / "dataset.json"
    if info_path.is_file():
        old = json.loads(info_path.read_text())
        if old.get("render") != key:  # other clip parameters: the kept renders are stale
            for f in (out / "programs").glob("*.npz"):
                f.unlink()
    todo = [prog for prog in p.programs if not (out / "programs" / f"{prog:03d}.npz").is_file()]
    rendered = 0
    for prog in tqdm(todo, desc="render programs", unit="program", disable=not progress or not todo,
                     dynamic_ncols=True):
        clips = render_program(prog, p, sf2)
        write_npz(out / "programs" / f"{prog:03d}.npz", audio=(clips * 32767).astype(np.int16))
        rendered += 1
    per: dict[str, dict[str, list]] = {s: {"audio": [], "program": [], "family": [], "pitch": [], "velocity": []}
                                       for s in SPLITS}
    manifest = []
    for prog in p.programs:
        clips = np.load(out / "programs" / f"{prog:03d}.npz")["audio"]
        for i, pitch in enumerate(p.pitches):
            for j, vel in enumerate(p.velocities):
                s = split_of(prog, pitch, vel)
                d = per[s]
                manifest.append({"split": s, "index": len(d["audio"]), "program": prog, "family": prog // 8,
                                 "family_name": GM_FAMILIES[prog // 8], "pitch": pitch, "velocity": vel})
                d["audio"].append(clips[i, j])
                d["program"].append(prog)
                d["family"].append(prog // 8)
                d["pitch"].append(pitch)
                d["velocity"].append(vel)
    for s in SPLITS:
        d = per[s]
        arrays = {k: np.asarray(v, np.int16 if k == "audio" else np.int64) for k, v in d.items()}
        if not d["audio"]:
            arrays["audio"] = np.zeros((0, p.length), np.int16)
        write_npz(out / f"{s}.npz", **arrays)
    atomic_write_text(out / "manifest.jsonl", "".join(json.dumps(m) + "\n" for m in manifest))
    info = {"kind": "tunesmith-audio-notes", "render": key, "programs": p.programs, "soundfont": str(sf2),
            "counts": {s: len(per[s]["audio"]) for s in SPLITS}, "params": asdict(p)}
    atomic_write_text(info_path, json.dumps(info, indent=1))
    # what this run did is the caller's to say, not the data set's: a resumed build writes the same files
    return {**info, "rendered_programs": rendered}


@dataclass
class NoteData:
    audio: np.ndarray  # (N, L) float32
    program: np.ndarray
    family: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray


def load_split(path: str | Path, split: str) -> NoteData:
    p = Path(path)
    info = p / "dataset.json"
    if not info.is_file():
        raise BadInputError(p, "not an audio note data set (no dataset.json); run 'tunesmith audio dataset' first")
    f = p / f"{split}.npz"
    if not f.is_file():
        raise BadInputError(f, "missing split file; rebuild with 'tunesmith audio dataset'")
    try:
        z = np.load(f, allow_pickle=False)
        return NoteData(z["audio"].astype(np.float32) / 32767.0, z["program"], z["family"], z["pitch"], z["velocity"])
    except (OSError, ValueError, KeyError) as e:
        raise BadInputError(f, f"corrupt split file ({e})") from None


def dataset_info(path: str | Path) -> dict:
    p = Path(path) / "dataset.json"
    if not p.is_file():
        raise BadInputError(Path(path), "not an audio note data set (no dataset.json); run 'tunesmith audio dataset' first")
    return json.loads(p.read_text())
