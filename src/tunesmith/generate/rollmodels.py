"""Generation with the piano-roll models: Coconet (generate, harmonize, infill) and the GAN."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import symusic
import torch

from tunesmith.errors import BadInputError, OptionError, ParameterError
from tunesmith.generate.base import Generated
from tunesmith.models import registry
from tunesmith.music.keys import key_name, parse_key, score_key
from tunesmith.music.score import Meta, Score
from tunesmith.represent.voices import (
    N_VOICES,
    PITCH_LO,
    STEPS_PER_QUARTER,
    VOICE_NAMES,
    VOICE_PROGRAMS,
    notes_to_classes,
    runs,
    voice_tracks,
    voices_to_score,
)

VOICE_INDEX = {"soprano": 0, "s": 0, "alto": 1, "a": 1, "tenor": 2, "t": 2, "bass": 3, "b": 3}


def _generated(score: Score, bars: int):
    tonic, mode = score_key(score)
    score.meta.key = key_name(tonic, mode)
    return Generated(score, score.meta.key, bars, 0, 0)


def _to_key(score: Score, key: str | None) -> Score:
    """Transpose to the asked tonic (the nearest way); the mode is the model's."""
    if not key:
        return score
    want, _ = parse_key(key)
    tonic, _ = score_key(score)
    shift = (want - tonic) % 12
    shift = shift - 12 if shift > 6 else shift
    return score.transpose(shift) if shift else score


def check_iterations(n: int) -> None:
    if not 1 <= n <= 2000:
        raise OptionError("--iterations", f"must be between 1 and 2000, got {n}")


class RollModel:
    """Common loading for the piano-roll families."""

    def __init__(self, model: torch.nn.Module, config: dict, name: str):
        self.model = model.eval()
        self.config = config
        self.name = name

    @classmethod
    def from_loaded(cls, model: torch.nn.Module, cfg: dict, path: Path) -> RollModel:
        return cls(model, cfg, registry.model_name(path, cfg))


class CoconetModel(RollModel):
    """A trained Coconet: generate from nothing, harmonize a melody, infill bars."""

    def _sample(self, x: np.ndarray, free: np.ndarray, *, temperature: float, iterations: int, seed: int,
                rules: str = "strict", key: tuple[int, str] | None = None,
                cadence: tuple[int, int] | None = None) -> tuple[np.ndarray, dict]:
        check_iterations(iterations)
        if not temperature > 0:
            raise OptionError("--temperature", f"must be positive, got {temperature}")
        out, rl = self._gibbs(torch.from_numpy(x[None]).long(), torch.from_numpy(free[None]), temperature,
                              iterations, seed, rules, key, cadence)
        return out[0].numpy(), rl.report(out, torch.from_numpy(free[None]))

    def _gibbs(self, x, free, temperature, iterations, seed, rules="strict", key=None, cadence=None):
        """The Gibbs chains' final rolls and the rules they ran under (:class:`RollRules`)."""
        from tunesmith.generate.rules import RollRules
        from tunesmith.models.rollnets import gibbs_sample

        rl = RollRules(rules, key=key, cadence=cadence)
        out = gibbs_sample(self.model, x, free, iterations=iterations, temperature=temperature, seed=seed,
                           adjust=rl)
        return out, rl

    def generate(self, *, bars: int = 8, temperature: float = 1.0, key: str | None = None,
                 seed: int = 0, iterations: int = 96, rules: str = "strict"):
        """``bars`` bars of four-voice music from an empty roll (to start from existing
        music use :meth:`harmonize` or :meth:`infill`), under the rules of four-part
        writing (:class:`~tunesmith.generate.rules.RollRules`) unless ``rules="off"``."""
        from tunesmith.generate.rules import cadence_plan

        T = bars * 16
        v, report = self._sample(np.zeros((N_VOICES, T), np.int64), np.ones((N_VOICES, T), bool),
                                 temperature=temperature, iterations=iterations, seed=seed, rules=rules,
                                 cadence=cadence_plan("4/4", T))
        score = voices_to_score(v, meta=Meta(title=f"{self.name} #{seed}", composer=f"tunesmith ({self.name})",
                                             source="generated", time_signature="4/4"))
        g = _generated(_to_key(score, key), bars)
        g.report = report
        g.repairs = report["n_relaxed"]
        return g

    def generate_batch(self, n: int, *, bars: int = 8, temperature: float = 1.0, seed: int = 0,
                       iterations: int = 96, batch: int = 50, rules: str = "strict") -> list:
        """``n`` pieces from nothing, sampled ``batch`` at a time (one Gibbs chain per piece,
        run together: many times faster than ``n`` calls of ``generate``; the pieces differ
        from ``generate(seed=i)``'s but are reproducible from ``seed``)."""
        check_iterations(iterations)
        if not temperature > 0:
            raise OptionError("--temperature", f"must be positive, got {temperature}")
        from tunesmith.generate.rules import RollRules, cadence_plan

        out = []
        T = bars * 16
        cadence = cadence_plan("4/4", T)
        for b0 in range(0, n, batch):
            k = min(batch, n - b0)
            x = torch.zeros((k, N_VOICES, T), dtype=torch.long)
            free = torch.ones_like(x, dtype=torch.bool)
            v, rl = self._gibbs(x, free, temperature, iterations, seed + b0, rules, cadence=cadence)
            for i in range(k):
                meta = Meta(title=f"{self.name} #{seed}.{b0 + i}", composer=f"tunesmith ({self.name})",
                            source="generated", time_signature="4/4")
                g = _generated(voices_to_score(v[i].numpy(), meta=meta), bars)
                keys = [rl.keys[i]] if rl.keys else None  # the key piece i was sampled in
                g.report = RollRules(rules, cadence=cadence, keys=keys).report(v[i : i + 1], free[i : i + 1])
                g.repairs = g.report["n_relaxed"]
                out.append(g)
        return out

    def harmonize(self, melody: Score, *, temperature: float = 1.0, iterations: int = 96, seed: int = 0,
                  rules: str = "strict", melody_track: str | int | None = None):
        """A four-voice chorale whose soprano is exactly the melody (see
        :func:`~tunesmith.music.melody.melody_of`: ``melody_track`` names or numbers it)."""
        from tunesmith.music.melody import melody_of

        line = melody_of(melody, melody_track)
        melody = line.score
        music = melody.music
        tracks = [t for t in music.tracks if len(t.notes) and not t.is_drum]
        if not tracks:
            raise BadInputError(melody.meta.source or "melody", "the melody has no notes")
        top = max(tracks, key=lambda t: float(t.notes.numpy()["pitch"].mean()))
        tpq = int(music.ticks_per_quarter)
        notes = top.notes.numpy()
        T = int(math.ceil((notes["time"] + notes["duration"]).max() / (tpq / STEPS_PER_QUARTER)))
        x = np.zeros((N_VOICES, T), np.int64)
        x[0] = notes_to_classes(notes, T, tpq)
        free = np.zeros((N_VOICES, T), bool)
        free[1:] = True
        from tunesmith.music.keys import score_key

        key = score_key(melody)  # the melody's key, which the rules and the harmonization's name keep
        v, report = self._sample(x, free, temperature=temperature, iterations=iterations, seed=seed, rules=rules,
                                 key=key)
        out = symusic.Score(tpq)
        for ts in music.time_signatures:
            out.time_signatures.append(ts)
        for tp in music.tempos:
            out.tempos.append(tp)
        if not len(out.tempos):
            out.tempos.append(symusic.Tempo(0, qpm=90.0))
        sop = symusic.Track(name="Soprano", program=VOICE_PROGRAMS[0])
        for n in top.notes:
            sop.notes.append(symusic.Note(n.time, n.duration, n.pitch, n.velocity))
        out.tracks.append(sop)
        step = tpq / STEPS_PER_QUARTER
        for k in range(1, N_VOICES):
            tr = symusic.Track(name=VOICE_NAMES[k], program=VOICE_PROGRAMS[k])
            for a, b, c in runs(v[k]):
                tr.notes.append(symusic.Note(round(a * step), round((b - a) * step), PITCH_LO + c - 1, 80))
            out.tracks.append(tr)
        meta = Meta(title=f"{melody.meta.title or 'melody'} (harmonized by {self.name})",
                    composer=f"tunesmith ({self.name})", source="harmonized", time_signature=melody.time_signature(),
                    key=key_name(*key))
        g = _generated(Score(out, meta), _bars(out))
        g.report, g.repairs = {**report, "melody": line.describe()}, report["n_relaxed"]
        return g

    def infill(self, score: Score, *, bars: tuple[int, int], voices: list[int] | None = None,
               temperature: float = 1.0, iterations: int = 96, seed: int = 0, rules: str = "strict"):
        """Regenerate ``bars`` (1-based, inclusive) of ``voices`` (default: all four). Notes
        that start outside the region are kept exactly (also when they ring into it);
        notes that start inside it in the chosen voices are replaced."""
        music = score.music
        order = voice_tracks(music)
        if order is None:
            n = sum(1 for t in music.tracks if len(t.notes) and not t.is_drum)
            raise BadInputError(score.meta.source or "score", f"infill needs a four-voice piece (soprano, alto, "
                                f"tenor, bass); this one has {n} pitched tracks")
        down = np.asarray(music.get_downbeats(), dtype=np.int64)
        end = int(music.end())
        n_bars = int(np.searchsorted(down, end, side="left")) if len(down) else 0
        a, b = bars
        if not 1 <= a <= b <= n_bars:
            raise OptionError("--bars", f"{a}-{b} is outside the piece's bars 1-{n_bars}")
        t0 = int(down[a - 1])
        t1 = int(down[b]) if b < len(down) else end
        voices = list(range(N_VOICES)) if voices is None else voices
        tpq = int(music.ticks_per_quarter)
        step = tpq / STEPS_PER_QUARTER
        T = int(math.ceil(end / step))
        x = np.stack([notes_to_classes(music.tracks[i].notes.numpy(), T, tpq) for i in order])
        s0, s1 = int(math.ceil(t0 / step)), min(T, int(math.ceil(t1 / step)))
        free = np.zeros((N_VOICES, T), bool)
        for v in voices:
            nn_ = music.tracks[order[v]].notes.numpy()
            keep = (nn_["time"] < t0) | (nn_["time"] >= t1)
            held = notes_to_classes({k: val[keep] for k, val in nn_.items()}, T, tpq) if keep.any() else np.zeros(T)
            free[v, s0:s1] = held[s0:s1] == 0
            x[v, free[v]] = 0
        from tunesmith.music.keys import score_key

        out_v, report = self._sample(x, free, temperature=temperature, iterations=iterations, seed=seed, rules=rules,
                                     key=score_key(score))
        out = music.copy()
        for v in voices:
            tr = out.tracks[order[v]]
            old = [n for n in tr.notes if not t0 <= n.time < t1]
            vel = int(np.median([n.velocity for n in tr.notes])) if len(tr.notes) else 80
            tr.notes.clear()
            for n in old:
                tr.notes.append(n)
            for a_, b_, c in runs(out_v[v], free[v]):
                start, stop = round(a_ * step), min(round(b_ * step), t1)
                tr.notes.append(symusic.Note(start, stop - start, PITCH_LO + c - 1, vel))
            tr.notes.sort()
        meta = Meta.from_dict(score.meta.to_dict())
        meta.title = f"{score.meta.title or 'piece'} (bars {a}-{b} infilled by {self.name})"
        g = _generated(Score(out, meta), n_bars)
        g.report, g.repairs = report, report["n_relaxed"]
        return g


class GanModel(RollModel):
    """A trained piano-roll GAN: 4-bar phrases from noise."""

    def generate(self, *, bars: int = 8, latent_scale: float = 1.0, key: str | None = None, seed: int = 0,
                 threshold: float = 0.2, rules: str = "strict"):
        """``bars`` bars from noise. ``latent_scale`` multiplies the latent noise (below 1:
        closer to the average phrase); ``threshold``: the least probability at which a
        voice's likeliest pitch sounds (else a rest). Decoding the generator's pitch
        probabilities into notes follows the rules of four-part writing
        (:func:`rule_decode`) unless ``rules="off"``."""
        from tunesmith.models.rollnets import gan_roll_to_classes

        if not latent_scale > 0:
            raise ParameterError("latent_scale", f"must be positive, got {latent_scale}")
        if not 0 <= threshold < 1:
            raise ParameterError("threshold", f"must be in [0, 1), got {threshold}")
        cfg = self.model.cfg
        n_phr = math.ceil(bars / cfg.n_bars)
        g = torch.Generator().manual_seed(seed)
        zs, _ = self.model.sample_latents(1, g)
        _, zp = self.model.sample_latents(n_phr, g)
        with torch.no_grad():
            # one shared latent for the piece (its character), a private latent per phrase and voice
            roll = self.model.G(zs.repeat(n_phr, 1) * latent_scale, zp * latent_scale)
        from tunesmith.generate.rules import check_mode

        check_mode(rules)
        cls = gan_roll_to_classes(roll, threshold)  # (n_phr, 4, T)
        v = torch.cat(list(cls), dim=1).numpy()[:, : bars * cfg.steps_per_bar]
        report = None
        if rules != "off":
            probs = roll.reshape(n_phr, 4, cfg.n_bars * cfg.steps_per_bar, cfg.n_pitches)
            probs = torch.cat(list(probs), dim=1).numpy()[:, : bars * cfg.steps_per_bar]
            v, report = rule_decode(probs, threshold, rules, steps_per_bar=cfg.steps_per_bar, first_guess=v)
        score = voices_to_score(v, meta=Meta(title=f"{self.name} #{seed}", composer=f"tunesmith ({self.name})",
                                             source="generated", time_signature="4/4"))
        g = _generated(_to_key(score, key), bars)
        if report is not None:
            g.report, g.repairs = report, report["n_relaxed"]
        return g


def rule_decode(probs: np.ndarray, threshold: float, rules: str, *, steps_per_bar: int = 16,
                first_guess: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Per-voice pitch probabilities (4, T, P) from ``PITCH_LO`` → classes (4, T), step by
    step and soprano first, each voice taking its likeliest pitch (a rest where none
    reaches ``threshold``) among those the rules of four-part writing allow given the
    voices already decoded (:class:`~tunesmith.generate.rules.FourPartRules`; the key is
    estimated from ``first_guess``, the decoding without rules)."""
    from tunesmith.generate.rules import (
        CANDIDATE_PITCHES,
        HOLD_I,
        N_CAND,
        REST_I,
        FourPartRules,
        cadence_plan,
    )
    from tunesmith.music.keys import estimate_key

    V, T, P = probs.shape
    key = None
    if first_guess is not None and (first_guess > 0).any():
        key = estimate_key(PITCH_LO + first_guess[first_guess > 0] - 1)[:2]
    rl = FourPartRules(rules, key=key)
    n_c = len(CANDIDATE_PITCHES)
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    out = np.zeros((V, T), np.int64)
    prev = np.full(V, -1)
    last_slice = prev.copy()
    # the final cadence, as the token sampler plans it (the dominant, then the tonic chord)
    dominant_at, tonic_at = cadence_plan("4/4", T) if steps_per_bar == 16 else (T - steps_per_bar,) * 2
    for t in range(T):
        cur: list[int] = []
        final_bar = True if t >= tonic_at else ("dominant" if t >= dominant_at else False)
        for v in range(V):
            lg = np.full(N_CAND, -np.inf)
            k = min(P, n_c)
            lg[:k] = logp[v, t, :k]
            lg[REST_I] = np.log(max(threshold, 1e-12))
            valid = np.ones(N_CAND, bool)
            valid[HOLD_I] = False  # a held note is its own pitch again (the roll merges repeats)
            viol = rl.violations(v, cur, last_slice, prev, final_bar=final_bar, on_beat=t % max(steps_per_bar // 4, 1) == 0)
            viol[REST_I] = False  # this decoder's escape is silence, in the cadence too
            x, fell_back = rl.adjust(lg, viol, valid, ordered=False)
            c = int(np.argmax(x))
            rl.record(viol[c], fell_back)
            if c == REST_I:
                cur.append(-1)
            else:
                cur.append(int(CANDIDATE_PITCHES[c]))
                out[v, t] = int(CANDIDATE_PITCHES[c]) - PITCH_LO + 1
        cur_a = np.array(cur)
        if any(c >= 0 and c != p for c, p in zip(cur_a, prev)):
            last_slice = cur_a.copy()
        prev = cur_a
    return out, rl.report()


def _bars(music: symusic.Score) -> int:
    down = music.get_downbeats()
    return int(np.searchsorted(down, music.end(), side="left")) if len(down) else 0


def parse_voices(text: str | None) -> list[int] | None:
    if not text:
        return None
    out = []
    for part in text.split(","):
        k = part.strip().lower()
        if k not in VOICE_INDEX:
            raise OptionError("--voices", f"unknown voice '{part.strip()}'; use soprano, alto, tenor, bass")
        out.append(VOICE_INDEX[k])
    return sorted(set(out))


def parse_bars(text: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise OptionError("--bars", f"'{text}' is not a bar or a range like 3-4") from None
    if a < 1 or b < a:
        raise OptionError("--bars", f"'{text}' is not a range of bars counted from 1")
    return a, b
