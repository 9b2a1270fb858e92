"""Using a trained note GAN: generate notes, play a score with them, evaluate them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tunesmith.errors import BadInputError, ParameterError
from tunesmith.models import registry
from tunesmith.music.notes import GM_FAMILIES, INSTRUMENTS

NOTE_FAMILIES = ("ddsp-gan", "wavegan")
MAX_NOTES = 256
MAX_NOTE_SECONDS = 30.0


class NotesGAN:
    """A trained note GAN of either family behind one interface: ``generate`` notes of a
    pitch, instrument, velocity and duration, and ``play_score`` a piece with them.
    Controls a family cannot honour (WaveGAN has no velocity or duration input) are
    refused, never dropped."""

    def __init__(self, model, config: dict, name: str):
        self.model = model.eval()
        self.config = config
        self.name = name
        self.family: str = config["family"]
        self.programs: list[int] = list(config["programs"])

    @classmethod
    def load(cls, name_or_path: str | Path = "notes-gan") -> NotesGAN:
        m, cfg, path = registry.load(name_or_path, families=NOTE_FAMILIES)
        return cls.from_loaded(m, cfg, path)

    @classmethod
    def from_loaded(cls, model, cfg: dict, path: Path) -> NotesGAN:
        if not cfg.get("programs"):
            raise BadInputError(path, "config.json lists no instruments (programs)")
        return cls(model, cfg, registry.model_name(path, cfg))

    @property
    def sample_rate(self) -> int:
        return self.model.cfg.sample_rate

    @property
    def pitch_range(self) -> tuple[int, int]:
        return self.model.cfg.pitch_lo, self.model.cfg.pitch_lo + self.model.cfg.n_pitches - 1

    @property
    def controls(self) -> set[str]:
        """What this family's notes can be asked for besides pitch and instrument."""
        return {"velocity", "duration", "latent_scale"} if self.family == "ddsp-gan" else set()

    def instruments(self) -> list[str]:
        names = {p: n for n, p in sorted(INSTRUMENTS.items(), key=lambda kv: -len(kv[0]))}
        return [names.get(p, f"program {p}") for p in self.programs]

    def instrument_index(self, instrument: str | int | None) -> int:
        """A name (piano, violin…), a General MIDI family name (guitar, strings…) whose one
        program the model has, or a program number → index. An instrument the model was
        not trained on is refused (a cello is not a violin)."""
        if instrument is None:
            return 0
        text = str(instrument).strip().lower()
        if text.isdigit() and int(text) in self.programs:
            return self.programs.index(int(text))
        prog = INSTRUMENTS.get(text)
        if prog is not None and prog in self.programs:
            return self.programs.index(prog)
        if text in GM_FAMILIES and prog is None:
            fam = GM_FAMILIES.index(text)
            hits = [i for i, p in enumerate(self.programs) if p // 8 == fam]
            if len(hits) == 1:
                return hits[0]
        raise ParameterError("instrument", f"'{instrument}' is not one of this model's instruments: "
                          f"{', '.join(self.instruments())}")

    def check_pitch(self, pitch: int) -> None:
        lo, hi = self.pitch_range
        if not lo <= pitch <= hi:
            raise ParameterError("pitch", f"{pitch} is outside the model's pitches {lo}-{hi}")

    def _check_controls(self, velocity, duration, latent_scale=None) -> None:
        for name, v in (("velocity", velocity), ("duration", duration), ("latent_scale", latent_scale)):
            if v is not None and name not in self.controls:
                raise ParameterError(name, f"the {self.family} model '{self.name}' has no {name} control "
                                  f"(it makes fixed clips); use a ddsp-gan model such as notes-gan")
        if latent_scale is not None and not 0 <= latent_scale <= 4:
            raise ParameterError("latent_scale", f"must be between 0 and 4, got {latent_scale}")
        if velocity is not None and not 1 <= velocity <= 127:
            raise ParameterError("velocity", f"must be between 1 and 127, got {velocity}")
        if duration is not None and not 0.02 <= duration <= MAX_NOTE_SECONDS:
            raise ParameterError("duration", f"must be between 0.02 and {MAX_NOTE_SECONDS:g} seconds, got {duration}")

    def release_seconds(self) -> float:
        cfg = self.model.cfg
        return cfg.length / cfg.sample_rate - getattr(cfg, "hold", 0.0)

    @torch.no_grad()
    def generate(self, pitch: int | list[int], instrument: str | int | None = None, *, num: int = 1,
                 seed: int = 0, velocity: int | None = None, duration: float | None = None,
                 latent_scale: float | None = None) -> np.ndarray:
        """(num, samples) float32 notes of the given pitch(es): ``duration`` seconds held
        (default: as in the training clips) followed by the learned release; ``latent_scale``
        the spread of z (0: the model's most typical note; default: the model's own)."""
        pitches = [pitch] * num if isinstance(pitch, int) else list(pitch)
        for p in pitches:
            self.check_pitch(p)
        self._check_controls(velocity, duration, latent_scale)
        inst = self.instrument_index(instrument)
        extra = {} if latent_scale is None else {"z_scale": latent_scale}
        g = torch.Generator().manual_seed(seed)
        n = len(pitches)
        vel = torch.full((n,), float(velocity if velocity is not None else 80))
        if duration is None:
            x = self.model.sample(torch.tensor(pitches), torch.full((n,), inst), vel, g, **extra)
        else:
            length = int(round((duration + self.release_seconds()) * self.sample_rate))
            x = self.model.sample(torch.tensor(pitches), torch.full((n,), inst), vel, g, hold=duration, length=length,
                                  **extra)
        return x.numpy()

    def play_score(self, score, instrument: str | int | list | None = None, *, seed: int = 0,
                   release: float = 0.08, max_seconds: float = 600.0) -> np.ndarray:
        """Render a Score with the model's notes. ``instrument``: one for every track, or a
        list (one per track, the last repeated for further tracks).

        ddsp-gan: every note of the score is generated at its own pitch, velocity and
        duration (pitches outside the trained range keep their exact frequency and take
        the timbre of the nearest trained pitch), each fades in over 2 ms and out over
        its last 10 ms, and overlapping notes are summed, then the mix is normalised.
        wavegan: one clip per pitch (pitches outside the range pitch-shifted from the
        nearest octave inside it), cut at each note's end plus a ``release`` fade."""
        music = score.music.to("second")
        tracks = [t for t in music.tracks if not t.is_drum and len(t.notes)]
        if not tracks:
            raise BadInputError(score.meta.source or "score", "no pitched notes to play")
        insts = instrument if isinstance(instrument, list) else [instrument]
        idx = [self.instrument_index(insts[min(k, len(insts) - 1)]) for k in range(len(tracks))]
        notes = [(float(n.time), float(n.duration), int(n.pitch), int(n.velocity), idx[k])
                 for k, t in enumerate(tracks) for n in t.notes]
        notes = [n for n in notes if n[1] > 0]
        if not notes:
            raise BadInputError(score.meta.source or "score", "no pitched notes to play")
        tail = self.release_seconds() if self.family == "ddsp-gan" else release
        end = max(s + d for s, d, *_ in notes) + tail + 0.05
        if end > max_seconds:
            raise BadInputError(score.meta.source or "score", f"{end:.0f} s long, over the {max_seconds:.0f} s limit")
        sr = self.sample_rate
        out = np.zeros(int(end * sr) + 1, np.float32)
        if self.family == "ddsp-gan":
            self._play_ddsp(notes, out, seed)
        else:
            self._play_clips(notes, out, seed, release)
        peak = float(np.abs(out).max())
        return out * (0.9 / peak) if peak > 0 else out

    @torch.no_grad()
    def _play_ddsp(self, notes, out: np.ndarray, seed: int, batch: int = 64) -> None:
        sr = self.sample_rate
        tail = self.release_seconds()
        fade_in, fade_out = int(0.002 * sr), int(0.010 * sr)
        g = torch.Generator().manual_seed(seed)
        # notes of similar length share a batch (each batch is as long as its longest note)
        order = sorted(range(len(notes)), key=lambda k: notes[k][1])
        for a in range(0, len(order), batch):
            chunk = [notes[k] for k in order[a : a + batch]]
            hold = torch.tensor([min(d, MAX_NOTE_SECONDS) for _, d, *_ in chunk])
            length = int((float(hold.max()) + tail) * sr) + 1
            pitch = torch.tensor([float(p) for _, _, p, _, _ in chunk])
            x = self.model.sample(pitch, torch.tensor([i for *_, i in chunk]),
                                  torch.tensor([float(v) for _, _, _, v, _ in chunk]), g,
                                  hold=hold, length=length).numpy()
            ramp_in = np.linspace(0, 1, fade_in, dtype=np.float32)
            ramp_out = np.linspace(1, 0, fade_out, dtype=np.float32)
            for (s, d, *_), clip in zip(chunk, x):
                n = min(len(clip), int((min(d, MAX_NOTE_SECONDS) + tail) * sr), len(out) - int(s * sr))
                seg = clip[:n].copy()
                seg[: min(fade_in, n)] *= ramp_in[: min(fade_in, n)]
                seg[n - min(fade_out, n):] *= ramp_out[fade_out - min(fade_out, n):]
                out[int(s * sr) : int(s * sr) + n] += seg

    def _play_clips(self, notes, out: np.ndarray, seed: int, release: float) -> None:
        import librosa

        sr = self.sample_rate
        lo, hi = self.pitch_range
        bank = {}
        for inst in sorted({i for *_, i in notes}):
            needed = sorted({p for _, _, p, _, i in notes if i == inst})
            source = {}
            for p in needed:
                q = p
                while q < lo:
                    q += 12
                while q > hi:
                    q -= 12
                source[p] = q
            base = sorted(set(source.values()))
            clips = dict(zip(base, self.generate(base, self.programs[inst], seed=seed)))
            for p, q in source.items():
                c = clips[q]
                bank[p, inst] = c if p == q else librosa.effects.pitch_shift(c, sr=sr, n_steps=p - q)
        fade = int(release * sr)
        for s, d, p, v, inst in notes:
            a = int(s * sr)
            clip = bank[p, inst]
            n = min(len(clip), int(d * sr) + fade, len(out) - a)
            seg = clip[:n].copy()
            tail = min(fade, n)
            seg[n - tail :] *= np.linspace(1, 0, tail, dtype=np.float32)
            out[a : a + n] += seg * (v / 127)


def load_classifier(name_or_path: str):
    """The bundled notes-classifier (or a checkpoint folder of one), in eval mode."""
    m, _, _ = registry.load(name_or_path, families=("note-classifier",))
    return m


def write_clips(clips: np.ndarray, out: Path, stem: str, sample_rate: int) -> list[Path]:
    from tunesmith.music.render import write_wav

    return [write_wav(out / f"{stem}-{k:02d}.wav", c, sample_rate) for k, c in enumerate(clips)]
