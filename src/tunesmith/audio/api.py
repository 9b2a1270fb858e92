"""Using a trained note GAN: generate notes, play a score with them, evaluate them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tunesmith.audio.dataset import GM_FAMILIES, INSTRUMENTS
from tunesmith.audio.wavegan import WaveGAN
from tunesmith.errors import BadInputError, OptionError
from tunesmith.train.checkpoint import load_weights, read_config, resolve_checkpoint

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
MAX_NOTES = 256


def _resolve(name_or_path: str | Path, kind: str) -> Path:
    p = Path(name_or_path)
    if p.exists():
        return resolve_checkpoint(p)
    if (BUNDLED_DIR / str(name_or_path) / "config.json").is_file():
        return BUNDLED_DIR / str(name_or_path)
    raise OptionError("--model", f"unknown {kind} '{name_or_path}': not a bundled model nor a checkpoint folder")


class NotesGAN:
    def __init__(self, model: WaveGAN, config: dict, name: str):
        self.model = model.eval()
        self.config = config
        self.name = name
        self.programs: list[int] = list(config["programs"])

    @classmethod
    def load(cls, name_or_path: str | Path = "notes-gan") -> NotesGAN:
        from tunesmith.audio.train import build_wavegan

        path = _resolve(name_or_path, "note GAN")
        cfg = read_config(path)
        if cfg.get("family") != "wavegan":
            raise OptionError("--model", f"'{name_or_path}' is a {cfg.get('family', 'unknown')} model, not a WaveGAN")
        m = build_wavegan(cfg["model"])
        load_weights(m, path)
        return cls(m, cfg, cfg.get("name") or Path(name_or_path).name)

    @property
    def sample_rate(self) -> int:
        return self.model.cfg.sample_rate

    @property
    def pitch_range(self) -> tuple[int, int]:
        return self.model.cfg.pitch_lo, self.model.cfg.pitch_lo + self.model.cfg.n_pitches - 1

    def instruments(self) -> list[str]:
        names = {p: n for n, p in sorted(INSTRUMENTS.items(), key=lambda kv: -len(kv[0]))}
        return [names.get(p, f"program {p}") for p in self.programs]

    def instrument_index(self, instrument: str | int | None) -> int:
        """A name (piano, violin…), a GM family name or a program number → index."""
        if instrument is None:
            return 0
        text = str(instrument).strip().lower()
        if text.isdigit() and int(text) in self.programs:
            return self.programs.index(int(text))
        prog = INSTRUMENTS.get(text)
        if prog is not None and prog in self.programs:
            return self.programs.index(prog)
        fam = GM_FAMILIES.index(text) if text in GM_FAMILIES else (prog // 8 if prog is not None else None)
        for i, p in enumerate(self.programs):
            if fam is not None and p // 8 == fam:
                return i
        raise OptionError("--instrument", f"'{instrument}' is not one of this model's instruments: "
                          f"{', '.join(self.instruments())}")

    def check_pitch(self, pitch: int) -> None:
        lo, hi = self.pitch_range
        if not lo <= pitch <= hi:
            raise OptionError("--pitch", f"{pitch} is outside the model's pitches {lo}-{hi}")

    @torch.no_grad()
    def generate(self, pitch: int | list[int], instrument: str | int | None = None, *, num: int = 1,
                 seed: int = 0) -> np.ndarray:
        """(num, length) float32 clips of the given pitch(es)."""
        pitches = [pitch] * num if isinstance(pitch, int) else list(pitch)
        for p in pitches:
            self.check_pitch(p)
        inst = self.instrument_index(instrument)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(len(pitches), self.model.cfg.z_dim, generator=g)
        x = self.model.G(z, torch.tensor(pitches) - self.model.cfg.pitch_lo, torch.full((len(pitches),), inst))
        return x.numpy()

    def play_score(self, score, instrument: str | int | None = None, *, seed: int = 0, release: float = 0.08,
                   max_seconds: float = 600.0) -> np.ndarray:
        """Render a Score with generated notes: one note per pitch is generated (pitches
        outside the model's range use the nearest octave inside it, pitch-shifted with
        librosa), then each note of the score plays that clip from its onset for its
        duration (plus a short release fade), scaled by velocity."""
        import librosa

        music = score.music.to("second")
        notes = [(float(n.time), float(n.duration), int(n.pitch), int(n.velocity))
                 for t in music.tracks if not t.is_drum for n in t.notes]
        if not notes:
            raise BadInputError(score.meta.source or "score", "no pitched notes to play")
        end = max(s + d for s, d, _, _ in notes) + release + 0.05
        if end > max_seconds:
            raise BadInputError(score.meta.source or "score", f"{end:.0f} s long, over the {max_seconds:.0f} s limit")
        sr = self.sample_rate
        lo, hi = self.pitch_range
        needed = sorted({p for _, _, p, _ in notes})
        source = {}
        for p in needed:
            q = p
            while q < lo:
                q += 12
            while q > hi:
                q -= 12
            source[p] = q
        base = sorted(set(source.values()))
        clips = dict(zip(base, self.generate(base, instrument, seed=seed)))
        bank = {}
        for p, q in source.items():
            c = clips[q]
            bank[p] = c if p == q else librosa.effects.pitch_shift(c, sr=sr, n_steps=p - q)
        out = np.zeros(int(end * sr) + 1, np.float32)
        fade = int(release * sr)
        for s, d, p, v in notes:
            a = int(s * sr)
            n = min(len(bank[p]), int(d * sr) + fade)
            seg = bank[p][:n].copy()
            tail = min(fade, n)
            seg[n - tail :] *= np.linspace(1, 0, tail, dtype=np.float32)
            out[a : a + n] += seg * (v / 127)
        peak = float(np.abs(out).max())
        return out * (0.9 / peak) if peak > 0 else out


def write_clips(clips: np.ndarray, out: Path, stem: str, sample_rate: int) -> list[Path]:
    from tunesmith.music.render import write_wav

    return [write_wav(out / f"{stem}-{k:02d}.wav", c, sample_rate) for k, c in enumerate(clips)]
