"""Four-voice chorales from a model over SATB frame tokens, with the rules of part writing.

The sampler walks the grammar of :mod:`tunesmith.represent.satb` itself — the
bar position of every frame is given, not sampled, and each frame's four voice
tokens are drawn soprano first — so every piece has exactly four voices, one
note per voice at a time, and the meter it began with. Before each voice token
the rule layer (:mod:`tunesmith.generate.rules`) masks the candidates that would
break a rule of four-part writing. ``harmonize`` gives the soprano and samples
the three lower voices under the same rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import symusic
import torch

from tunesmith.errors import BadInputError, OptionError, ParameterError
from tunesmith.generate.base import PRIMER_BARS, Generated, default_top_p, first_bars
from tunesmith.generate.rules import (
    CANDIDATE_PITCHES,
    HOLD_I,
    N_CAND,
    REST_I,
    VOICE_RULES,
    FourPartRules,
    cadence_plan,
    candidate_tokens,
    check_mode,
)
from tunesmith.generate.sampler import SamplingControls, draw, sampling_mode
from tunesmith.music.keys import key_name, opening_key, parse_key, score_key
from tunesmith.music.score import Meta, Score
from tunesmith.represent import satb

REDRAWS = 8  # harmonizing, strict rules: chords drawn unmasked before masking voice by voice
MAX_PARTICLES = 64  # harmonizing: chains of the particle filter (each costs about one harmonization)
# Motion calibration: logit offsets per voice for each melodic step from the sounding note
# (−12…+12 semitones) and for holding it, stored in the model's config.json
# (``sampling.motion_bias``) by ``scripts/calibrate_motion.py``, which fits them so that the
# sampler's motions match the training chorales'. Without them the LSTM's free-running
# samples restrike the sounding pitch more often than Bach (bass: about twice), hold notes
# longer and leap by thirds more often (the script's first round prints the rates):
# teacher-forced on held-out chorales its restrike and hold probabilities are right, so this
# is exposure bias — what the model does with its own output — and a per-motion offset
# fitted on the training pieces corrects the marginals without touching what it learned.
MOTION_SPAN = 12
MOTION_BINS = 2 * MOTION_SPAN + 2  # steps −12…+12, then Hold
# Voice-leading weights: per voice, a logit weight for each check of tunesmith.represent.voicing
# (parallel fifths, octaves, hidden fifths and octaves, crossing, overlap, spacing, range) that a
# candidate fails, stored in config.json (``sampling.voicing``) by ``scripts/calibrate_motion.py
# --voicing --rules off``. They start as the maximum-likelihood weights on the training
# chorales with the network frozen: teacher-forced, the bundled LSTM puts 4.5% of its probability on pitches
# making parallel fifths where one is possible, Bach's chorales choose one 0.4% of the time;
# the fitted weights (about −3 to −4 for parallels) bring the first to the second and lower
# the training NLL. Sampled freely the model then still drifts into such places more often
# (exposure bias, as with the motions), so the script refits them as it does the motion
# offsets: until the sampled pieces break each check per voice as often as the training
# chorales do. Not a rule: Bach's own rate of each is the target, not zero. Used only
# without rules: under strict or soft rules the rule layer decides voice leading itself.
# Scale-degree calibration: per mode (major, minor), a logit offset for each pitch class
# counted from the tonic of the key the rules hold the piece to, stored in config.json
# (``sampling.degree_bias``) by ``scripts/calibrate_motion.py --degrees``, fitted in the same
# rounds as the motion offsets so that the sampled pieces' notes fall on each degree as often
# as the training chorales' do on the degrees of their stated key. Sampled freely in a
# minor key under strict rules, the bundled LSTM writes the natural minor's seventh 1.3 times
# as often as Bach and his raised leading tone half as often (200 pieces), so its minor pieces
# read as the relative major. Used where the strict motion offsets are (strict and soft
# rules), from the moment the key is known. The bundled model has none: fitted, they matched
# these shares but made its pieces easier to tell from held-out chorales (BENCHMARKS.md).
DEGREE_MODES = ("major", "minor")
CAPABILITIES = frozenset({"primer", "key", "temperature", "top_k", "top_p", "device", "rules", "harmonize", "cache",
                          "particles"})


class ChoraleTokenModel:
    """A sequence model (any token family) trained on SATB frame tokens."""

    capabilities = CAPABILITIES

    def __init__(self, model: torch.nn.Module, config: dict, name: str = "", device: str = "cpu"):
        self.model = model.eval()
        if hasattr(model, "int8_sampling"):
            model.int8_sampling = True  # one token at a time on a CPU: int8 weights (see the model's class)
        self.config = config
        self.name = name or config.get("name", "model")
        self.device = device
        self._cand = torch.from_numpy(candidate_tokens())
        self._motion = motion_table(motion_bias(config))
        self._motion_free = motion_table(motion_bias(config, "motion_bias_off"))  # fitted without the rules
        self._voicing = voicing_weights(config)
        self._voicing_h = voicing_weights(config, "voicing_harmonize")  # refitted on harmonizations
        self._degrees = degree_bias(config)

    def _calibration_for(self, mode: str, harmonizing: bool = False):
        """The motion offsets, voice-leading weights and scale-degree offsets for a rules mode. Each set is fitted on
        pieces sampled in the mode it serves (the masks change what the sampler writes): the
        voice-leading weights and ``motion_bias_off`` without rules, ``motion_bias`` under
        strict rules, whose masks decide voice leading themselves. Harmonizing without rules
        uses ``voicing_harmonize`` where the config has it: under a given melody the lower
        voices alone must keep their distance from it and avoid the hidden octaves its leaps
        invite, which the weights fitted on free pieces (whose soprano is the model's own) let
        through at about three (the bass's hidden octaves) and nine (the alto's spacing)
        times Bach's rate."""
        if mode == "off":
            weights = self._voicing_h if harmonizing and self._voicing_h is not None else self._voicing
            return (self._motion_free if self._motion_free is not None else self._motion), weights, None
        return self._motion, None, self._degrees

    @property
    def motion_calibrated(self) -> bool:
        return any(x is not None for x in (self._motion, self._motion_free, self._voicing, self._voicing_h,
                                           self._degrees))

    @classmethod
    def from_loaded(cls, model, cfg: dict, path: Path, *, device: str = "cpu") -> ChoraleTokenModel:
        from tunesmith.models import registry

        tok = cfg.get("tokenizer", {})
        if tok.get("kind") != satb.KIND or tok.get("version") != satb.VERSION:
            raise BadInputError(path, f"not an SATB token model (tokenizer {tok.get('kind')!r} "
                                f"version {tok.get('version')!r})")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise OptionError("--device", "CUDA is not available on this machine")
        return cls(model.to(device), cfg, name=registry.model_name(path, cfg), device=device)

    # ------------------------------------------------------------------ public
    def generate(self, *, bars: int = 8, seed: int = 0, primer: Score | None = None, key: str | None = None,
                 temperature: float = 1.0, top_k: int = 0, top_p: float | None = None, rules: str = "strict",
                 use_cache: bool = True, calibrated: bool = True) -> Generated:
        """A new chorale of ``bars`` bars. ``calibrated=False`` samples without the motion
        calibration of the model's config (see :data:`MOTION_BINS`)."""
        controls = SamplingControls(temperature, top_k, default_top_p(self) if top_p is None else top_p)
        controls.check()
        check_mode(rules)
        want = parse_key(key) if key else None
        prompt = [satb.BOS]
        grid0 = np.zeros((4, 0), np.int64)
        meter = None
        shift = 0
        primer_note = None
        if primer is not None:
            primer, primer_note = first_bars(primer, PRIMER_BARS, "primer")
            ids = satb.encode(primer)
            if ids is None:
                voices = len([t for t in primer.music.tracks if len(t.notes) and not t.is_drum])
                tune = (" — a tune of one line can be continued by a model of tunes (--model folk) or harmonized "
                        "as a chorale (tunesmith harmonize)" if voices == 1 else "")
                raise ParameterError("primer", f"{primer.meta.source or 'the primer'} needs exactly four voices "
                                     "(soprano, alto, tenor, bass) in a meter this model knows "
                                     f"({', '.join(satb.METERS)}){tune}")
            meter = satb.METERS[int(ids[0]) - satb.METER0]
            grid0 = ids[1:].reshape(-1, satb.FRAME)[:, 1:].T
            if want is not None:  # move the primer to the asked key (nearest direction)
                tonic, mode = score_key(primer)
                target = want[0] if mode == want[1] else want[0] + (3 if want[1] == "minor" else -3)
                shift = ((target - tonic + 6) % 12) - 6
                grid0 = _transpose_grid(grid0, shift)
            prompt += [int(ids[0])] + _frames_to_ids(grid0, meter, 0)
        key_now = want
        if key_now is None and primer is not None:
            key_now = score_key(primer)
        rl = FourPartRules(rules, key=key_now)
        g = torch.Generator().manual_seed(seed)
        with sampling_mode(), torch.inference_mode():
            logits, state = self.model.step(torch.tensor([prompt], device=self.device), None)
            if meter is None:
                meter_ids = [satb.METER0 + satb.METERS.index(m) for m in ("4/4", "3/4")]
                lg = logits[0, -1, meter_ids].float().cpu()
                meter_tok = meter_ids[draw(lg.numpy(), controls, g)]
                meter = satb.METERS[meter_tok - satb.METER0]
                logits, state = self.model.step(torch.tensor([[meter_tok]], device=self.device), state)
                prompt.append(meter_tok)
            new = self._frames(logits[0, -1], state, prompt, grid0, meter, bars, rl, controls, g, use_cache,
                               melody=None, estimate_key_after=None if key_now else satb.bar_steps(meter),
                               calibrated=calibrated)
        grid = np.concatenate([grid0, new], axis=1)
        key_out = rl.key or score_key(satb.grid_to_score(grid, meter))
        meta = Meta(title=f"{self.name} #{seed}", composer=f"tunesmith ({self.name})", source="generated",
                    key=key_name(*key_out), time_signature=meter)
        score = satb.grid_to_score(grid, meter, meta=meta)
        if primer is not None:
            score = _keep_primer_notes(primer, score, grid0.shape[1], shift)
        n_new = new.shape[1] * satb.FRAME
        report = {**rl.report(), **({"primer": primer_note} if primer_note else {}),
                  "motion_calibration": calibrated and self._motion is not None,
                  "degree_calibration": calibrated and rules != "off" and self._degrees is not None,
                  "voicing_weights": calibrated and rules == "off" and self._voicing is not None}
        return Generated(score, meta.key, bars, rl.report()["n_relaxed"], n_new, None, report=report)

    def harmonize(self, melody: Score, *, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
                  top_p: float | None = None, rules: str = "strict", melody_track: str | int | None = None,
                  particles: int = 1, calibrated: bool = True) -> Generated:
        """Alto, tenor and bass under the melody (see :func:`~tunesmith.music.melody.melody_of`:
        ``melody_track`` names or numbers it), which stays exactly as written. ``particles``
        > 1: that many chains weighted by how likely each makes the melody (see :meth:`_frames`)."""
        from tunesmith.music.melody import melody_of

        controls = SamplingControls(temperature, top_k, default_top_p(self) if top_p is None else top_p)
        controls.check()
        check_mode(rules)
        if not 1 <= particles <= MAX_PARTICLES:
            raise ParameterError("particles", f"must be between 1 and {MAX_PARTICLES}, got {particles}")
        line = melody_of(melody, melody_track)
        melody = line.score
        music = melody.music
        tracks = [t for t in music.tracks if len(t.notes) and not t.is_drum]
        if not tracks:
            raise BadInputError(melody.meta.source or "melody", "the melody has no notes")
        top = max(tracks, key=lambda t: float(t.notes.numpy()["pitch"].mean()))
        meter = satb.meter_of(music)
        if meter is None:
            ts = music.time_signatures[0]
            raise BadInputError(melody.meta.source or "melody", f"meter {ts.numerator}/{ts.denominator} is not one "
                                f"this model knows ({', '.join(satb.METERS)})")
        tpq = music.ticks_per_quarter
        step = tpq / satb.STEPS_PER_QUARTER
        notes = top.notes.numpy()
        n_steps = int(np.ceil((notes["time"] + notes["duration"]).max() / step))
        sop = satb._voice_grid(notes, n_steps, step)
        tonic, mode = score_key(Score(_one_track(music, top), melody.meta))
        rl = FourPartRules(rules, key=(tonic, mode))
        per_bar = satb.bar_steps(meter)
        bars = int(np.ceil(n_steps / per_bar))
        prompt = [satb.BOS, satb.METER0 + satb.METERS.index(meter)]
        g = torch.Generator().manual_seed(seed)
        with sampling_mode(), torch.inference_mode():
            logits, state = self.model.step(torch.tensor([prompt], device=self.device), None)
            grid = self._frames(logits[0, -1], state, prompt, np.zeros((4, 0), np.int64), meter, bars, rl, controls,
                                g, True, melody=sop, estimate_key_after=None, particles=particles, seed=seed,
                                calibrated=calibrated)
        lower = satb.grid_to_score(grid[:, :n_steps], meter)
        out = symusic.Score(480)
        out.time_signatures.append(symusic.TimeSignature(0, *(int(x) for x in meter.split("/"))))
        qpm = music.tempos[0].qpm if len(music.tempos) else 90.0
        out.tempos.append(symusic.Tempo(0, qpm=float(qpm)))
        src = _one_track(music, top).resample(480, min_dur=1).tracks[0]
        soprano = symusic.Track(name="Soprano", program=satb.VOICE_PROGRAMS[0])
        for n in src.notes:
            soprano.notes.append(symusic.Note(n.time, n.duration, n.pitch, n.velocity))
        out.tracks.append(soprano)
        for tr in list(lower.music.tracks)[1:]:
            out.tracks.append(tr)
        meta = Meta(title=f"{melody.meta.title or 'melody'} (harmonized)", composer=f"tunesmith ({self.name})",
                    source="generated", key=key_name(tonic, mode), time_signature=meter)
        return Generated(Score(out, meta), meta.key, bars, rl.report()["n_relaxed"], grid.size, None,
                         report={**rl.report(), "melody": line.describe(),
                                 "motion_calibration": calibrated and self._motion is not None,
                                 "degree_calibration": calibrated and rules != "off" and self._degrees is not None,
                                 "voicing_weights": calibrated and rules == "off" and self._voicing is not None,
                                 "voicing_weights_harmonize": calibrated and rules == "off"
                                 and self._voicing_h is not None})

    # ------------------------------------------------------------------ the sampler
    def _frames(self, last, state, prompt, grid0, meter, bars, rl: FourPartRules, controls, g, use_cache, *,
                melody, estimate_key_after, particles: int = 1, seed: int = 0, calibrated: bool = True):
        """The frames after ``grid0``, drawn voice by voice under ``rl``. Harmonizing with
        ``particles`` > 1: that many chains, weighted at every soprano token by the probability
        the model gives it after the chain's own lower voices, and resampled when the weights
        grow uneven (sequential Monte Carlo): the lower voices are then drawn from the model's
        distribution *given the whole melody* — a chain whose chord makes the melody's next
        note unlikely dies out — where one chain only sees the melody up to the frame it is in.
        ``rl`` ends up holding the counts of the chain returned."""
        import copy

        from tunesmith.progress import report

        per_bar = satb.bar_steps(meter)
        beat = satb.beat_steps(meter)
        n_frames = bars * per_bar
        dominant_at, tonic_at = cadence_plan(meter, n_frames, melody, rl.key[0] if rl.key else None)
        start = grid0.shape[1]
        snd0 = satb.sounding(grid0) if start else np.full((4, 1), -1)
        prev = snd0[:, -1].copy()
        last_slice = prev.copy()
        if start:  # the sounding pitches at the primer's last onset
            onset_cols = [t for t in range(start) if any(satb.PITCH0 <= x for x in grid0[:, t])]
            if onset_cols:
                last_slice = snd0[:, onset_cols[-1]].copy()
        first = _Chain(self, last, state, list(prompt), prev, last_slice, np.zeros((4, n_frames), np.int64), rl,
                       use_cache, *(self._calibration_for(rl.mode, melody is not None) if calibrated else (None, None, None)))
        smc = particles > 1 and melody is not None
        chains = [first] + [first.fork() for _ in range(particles - 1)] if smc else [first]
        logw = np.zeros(len(chains))
        rng = np.random.default_rng(seed)
        for f in range(n_frames):
            if f % per_bar == 0:
                report(f // per_bar, bars, "bars")
            # the cadence (see cadence_plan), and the tonic chord on the first beat of a new piece
            if f >= tonic_at or (start == 0 and f == 0 and melody is None):
                final_bar = True
            else:
                final_bar = "dominant" if f >= dominant_at else False
            for i, ch in enumerate(chains):
                ch.feed(satb.POS0 + (start + f) % per_bar)
                if smc:
                    logw[i] += ch.log_prob(_melody_token(melody, f, ch.prev))
                ch.frame(f, final_bar, melody, start, controls, g, on_beat=(start + f) % beat == 0)
                if estimate_key_after and f + 1 == estimate_key_after and ch.rl.key is None:
                    ch.rl.set_key(_key_of(ch.out[:, : f + 1]))
            if smc:
                w = np.exp(logw - logw.max())
                w /= w.sum()
                if 1.0 / np.sum(w**2) < len(chains) / 2:  # effective sample size: resample
                    # systematic resampling: low variance, and a chain kept keeps its own draws
                    pos = (rng.random() + np.arange(len(chains))) / len(chains)
                    idx = np.minimum(np.searchsorted(np.cumsum(w), pos), len(chains) - 1)
                    chains = [chains[j] if k == 0 or idx[k - 1] != j else chains[j].fork() for k, j in enumerate(idx)]
                    logw[:] = 0.0
        best = chains[int(np.argmax(logw))] if smc else first
        if best.rl is not rl:  # the caller's rule object reports the chain returned
            rl.__dict__.update(copy.deepcopy(best.rl.__dict__))
        return best.out


def _sampling_array(config: dict, key: str, cols: int, what: str, rows: int = 4) -> np.ndarray | None:
    """The config's ``sampling.<key>`` as a (rows, cols) float32 array, or None; anything else is
    refused naming the key."""
    a = (config.get("sampling") or {}).get(key)
    if a is None:
        return None
    try:
        a = np.asarray(a, np.float32)
    except (TypeError, ValueError):
        a = None
    if a is None or a.shape != (rows, cols) or not np.isfinite(a).all():
        raise BadInputError("config.json", f"sampling.{key} must be {rows} rows of {cols} finite numbers{what}")
    return a


def motion_bias(config: dict, key: str = "motion_bias") -> np.ndarray | None:
    """The config's ``sampling.motion_bias`` (or another ``key``) as a (4, MOTION_BINS) array, or None."""
    return _sampling_array(config, key, MOTION_BINS, "")


def voicing_weights(config: dict, key: str = "voicing") -> np.ndarray | None:
    """The config's ``sampling.voicing`` (or another ``key``) as a (4, len(VOICE_RULES)) float32 array, or None."""
    return _sampling_array(config, key, len(VOICE_RULES), f" ({', '.join(VOICE_RULES)})")


def degree_bias(config: dict, key: str = "degree_bias") -> np.ndarray | None:
    """The config's ``sampling.degree_bias`` as a (2, 12) array (rows: major, minor; columns:
    pitch classes from the tonic), or None."""
    return _sampling_array(config, key, 12, " (major, then minor; pitch classes from the tonic)",
                           rows=len(DEGREE_MODES))


def degree_offsets(bias: np.ndarray | None, key: tuple[int, str] | None) -> np.ndarray | None:
    """The (N_CAND,) offsets a key's degrees give the candidates (holds and rests: none)."""
    if bias is None or key is None:
        return None
    out = np.zeros(N_CAND, np.float32)
    out[: len(CANDIDATE_PITCHES)] = bias[DEGREE_MODES.index(key[1])][(CANDIDATE_PITCHES - key[0]) % 12]
    return out


def motion_table(bias: np.ndarray | None) -> np.ndarray | None:
    """(4, MOTION_BINS) offsets → (4, pitches, candidates): the offset each candidate gets for
    each voice and sounding pitch (steps beyond an octave and rests: none)."""
    if bias is None:
        return None
    sounding = np.arange(satb.PITCH_LO, satb.PITCH_HI)
    step = CANDIDATE_PITCHES[None, :] - sounding[:, None]  # (pitches, candidate pitches)
    inside = np.abs(step) <= MOTION_SPAN
    out = np.zeros((4, len(sounding), N_CAND), np.float32)
    for v in range(4):
        out[v, :, : len(CANDIDATE_PITCHES)] = np.where(inside, bias[v][np.clip(step, -MOTION_SPAN, MOTION_SPAN)
                                                                       + MOTION_SPAN], 0.0)
        out[v, :, HOLD_I] = bias[v, -1]
    return out


def motion_counts(grid: np.ndarray, frames: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(4, MOTION_BINS) counts of each motion per voice over the frames where the voice has a
    sounding note before it, and (4,) the number of such frames (restrikes are step 0)."""
    snd = satb.sounding(grid)
    counts = np.zeros((4, MOTION_BINS))
    frames_n = np.zeros(4)
    cols = range(grid.shape[1])[frames] if frames is not None else range(grid.shape[1])
    for v in range(4):
        for t in cols:
            if t == 0 or snd[v, t - 1] < 0:
                continue
            frames_n[v] += 1
            x = grid[v, t]
            if x == satb.HOLD:
                counts[v, -1] += 1
            elif x >= satb.PITCH0:
                d = int(snd[v, t] - snd[v, t - 1])
                if abs(d) <= MOTION_SPAN:
                    counts[v, d + MOTION_SPAN] += 1
    return counts, frames_n


def _melody_token(melody, f: int, prev) -> int:
    tok = int(melody[f]) if f < len(melody) else satb.REST
    if tok == satb.HOLD and prev[0] < 0:
        tok = satb.REST
    return tok


class _Chain:
    """One run of the frame sampler: the model's state after the tokens so far, the sounding
    pitches, the frames drawn and the rule counts. ``fork`` copies it (the model's state
    tensors are never written in place, so they are shared)."""

    def __init__(self, owner: ChoraleTokenModel, last, state, seq, prev, last_slice, out, rl, use_cache, motion,
                 voicing=None, degrees=None):
        self.m, self.last, self.state, self.seq = owner, last, state, seq
        self.prev, self.last_slice, self.out, self.rl, self.use_cache = prev, last_slice, out, rl, use_cache
        self.motion, self.voicing, self.degrees = motion, voicing, degrees
        self._deg_key, self._deg = None, None  # the offsets of the key they were made for

    def fork(self) -> _Chain:
        import copy

        return _Chain(self.m, self.last, self.state, list(self.seq), self.prev.copy(), self.last_slice.copy(),
                      self.out.copy(), copy.deepcopy(self.rl), self.use_cache, self.motion, self.voicing,
                      self.degrees)

    def feed(self, tok: int) -> None:
        m = self.m
        self.seq.append(tok)
        if self.use_cache:
            lg, self.state = m.model.step(torch.tensor([[tok]], device=m.device), self.state)
        else:
            lg, self.state = m.model.step(torch.tensor([self.seq], device=m.device), None)
        self.last = lg[0, -1]

    def log_prob(self, tok: int) -> float:
        return float(torch.log_softmax(self.last.float(), dim=-1)[tok])

    def draw_chord(self, f, final_bar, melody, start, controls, g, *, masked, on_beat=True):
        """Draw the four voices of frame f, feeding each token; with ``masked`` under the
        rules (and recorded), else as the model has it, stopping at the first voice
        that breaks a rule. Returns (no rule broken, sounding pitches, any onset)."""
        cand_ids = self.m._cand
        cand_np = cand_ids.numpy()
        rl, prev = self.rl, self.prev
        cur: list[int] = []
        onset = False
        for v in range(4):
            if melody is not None and v == 0:
                tok = _melody_token(melody, f, prev)
                k = int(np.flatnonzero(cand_np == tok)[0])
            else:
                lg = self.last[cand_ids].float().cpu().numpy()
                valid = np.ones(N_CAND, bool)
                valid[HOLD_I] = prev[v] >= 0
                if self.motion is not None and prev[v] >= 0:
                    lg = lg + self.motion[v, prev[v] - satb.PITCH_LO]
                if self.degrees is not None and rl.key is not None:
                    if self._deg_key != rl.key:
                        self._deg_key, self._deg = rl.key, degree_offsets(self.degrees, rl.key)
                    lg = lg + self._deg
                if start == 0 and f == 0 and melody is None:
                    valid[REST_I] = False  # a new piece opens with a chord on its first beat
                viol = rl.violations(v, cur, self.last_slice, prev, final_bar=final_bar, on_beat=on_beat)
                if self.voicing is not None:  # the learned voice-leading weights (see the comment above CAPABILITIES)
                    lg = lg + viol[:, : len(VOICE_RULES)] @ self.voicing[v]
                if masked:
                    x, fell_back = rl.adjust(lg, viol, valid)
                else:
                    x, fell_back = np.where(valid, lg, -np.inf), False
                k = draw(x, controls, g)
                if not masked and viol[k].any():
                    return False, cur, onset
                rl.record(viol[k], fell_back)
                tok = int(cand_np[k])
            if k < len(CANDIDATE_PITCHES):
                cur.append(int(CANDIDATE_PITCHES[k]))
                onset = True
            elif k == HOLD_I:
                cur.append(int(prev[v]))
            else:
                assert k == REST_I
                cur.append(-1)
            self.out[v, f] = tok
            self.feed(tok)
        return True, cur, onset

    def frame(self, f, final_bar, melody, start, controls, g, on_beat=True) -> None:
        # Harmonizing under strict rules: first draw the lower voices from the model as it is
        # and keep the chord if it breaks no rule — rejection sampling, the model's own
        # distribution conditioned on a clean chord. Masking voice by voice conditions
        # greedily instead: the alto may leave the tenor only notes the model hardly wants.
        # After REDRAWS rejected chords, the masked draw, voice by voice. (Measured on the
        # benchmark's 124 harmonizations: chords 0.79 -> 0.82 and two-sample accuracy 0.82 ->
        # 0.79; on 200 new pieces it made the music stiller — a chord where no voice
        # moves is always clean — and the two-sample accuracy worse, 0.92 -> 0.95, so a
        # new piece keeps the masked draw.)
        rl = self.rl
        clean = False
        if rl.mode == "strict" and melody is not None:
            mark = (self.last, self.state, len(self.seq))
            for _ in range(REDRAWS):
                clean, cur, onset = self.draw_chord(f, final_bar, melody, start, controls, g, masked=False,
                                                    on_beat=on_beat)
                if clean:
                    break
                rl.redrawn += 1
                self.last, self.state = mark[0], mark[1]
                del self.seq[mark[2]:]
            if not clean:
                rl.masked_frames += 1
        if not clean:
            _, cur, onset = self.draw_chord(f, final_bar, melody, start, controls, g, masked=True, on_beat=on_beat)
        self.prev = np.array(cur)
        if onset:
            self.last_slice = self.prev.copy()


def _keep_primer_notes(primer: Score, decoded: Score, n_frames: int, shift: int) -> Score:
    """The primer's own notes (transposed by ``shift``), then the decoded continuation: the
    grid quantizes to sixteenths, but what the user gave is kept note for note; a primer
    note the model holds on past the primer is lengthened to where the model let it go."""
    src = primer.music.resample(480, min_dur=1)
    order = satb.voice_tracks(src)
    tick = 480 // satb.STEPS_PER_QUARTER
    edge = n_frames * tick
    out = decoded.music.copy()
    for v, tr in enumerate(out.tracks):
        new = [n for n in tr.notes if n.time >= edge]
        held = [n for n in tr.notes if n.time < edge < n.time + n.duration]
        own = [symusic.Note(n.time, n.duration, n.pitch + shift, n.velocity) for n in src.tracks[order[v]].notes]
        if held and own:
            last = max(own, key=lambda n: n.time + n.duration)
            end = held[0].time + held[0].duration
            if last.time + last.duration >= edge - tick:  # it sounded up to the edge: the model held it on
                last.duration = end - last.time
        tr.notes.clear()
        for n in sorted(own + new, key=lambda n: (n.time, n.pitch)):
            tr.notes.append(n)
    return Score(out, decoded.meta)


def _key_of(grid: np.ndarray) -> tuple[int, str]:
    """The key of a new piece's first bar, which the rules then hold it to: Aarden's profiles
    over the sounding pitches of every frame, with the first bass note as a sign of the
    tonic (:func:`~tunesmith.music.keys.opening_key`). On the first bars of the training
    chorales it agrees with the stated key in 208 of 271; Krumhansl–Schmuckler, used here
    before 2026-12-06, in 161 (minor openings read as major in 37 of 129)."""
    snd = satb.sounding(grid)
    p = snd[snd >= 0]
    bass = snd[3][snd[3] >= 0]
    return opening_key(p, first_bass=int(bass[0]) if len(bass) else None)


def _transpose_grid(grid: np.ndarray, shift: int) -> np.ndarray:
    out = grid.copy()
    is_p = out >= satb.PITCH0
    moved = out[is_p] + shift
    while (moved < satb.PITCH0).any() or (moved >= satb.VOCAB_SIZE).any():
        moved = np.where(moved < satb.PITCH0, moved + 12, np.where(moved >= satb.VOCAB_SIZE, moved - 12, moved))
    out[is_p] = moved
    return out


def _frames_to_ids(grid: np.ndarray, meter: str, start: int) -> list[int]:
    per_bar = satb.bar_steps(meter)
    ids: list[int] = []
    for t in range(grid.shape[1]):
        ids.append(satb.POS0 + (start + t) % per_bar)
        ids.extend(int(x) for x in grid[:, t])
    return ids


def _one_track(music: symusic.Score, track) -> symusic.Score:
    out = symusic.Score(music.ticks_per_quarter)
    for ts in music.time_signatures:
        out.time_signatures.append(ts)
    out.tracks.append(track.copy())
    return out



def voicing_positions(m: ChoraleTokenModel, pieces: list[np.ndarray]):
    """Teacher-forced on ``pieces`` (SATB ids, meter token first), at every voice token the
    sampler would choose: the model's candidate logits (n, N_CAND), the voice-leading checks of
    the candidates (n, N_CAND, len(VOICE_RULES)), the voice (n,) and the chosen candidate (n,)."""
    from tunesmith.represent.voicing import grid_positions

    cand = torch.from_numpy(candidate_tokens())
    logits, checks, voices, chosen = [], [], [], []
    was = m.model.training
    m.model.eval()
    with torch.inference_mode():
        for ids in pieces:
            seq = torch.from_numpy(np.concatenate([[satb.BOS], ids]).astype(np.int64))[None].to(m.device)
            lg, _ = m.model.step(seq, None)  # lg[0, i] predicts seq[i + 1] = ids[i]
            lg = lg[0][:, cand.to(lg.device)].float().cpu().numpy()
            for i, v, k, f in grid_positions(ids):
                logits.append(lg[i])
                checks.append(f)
                voices.append(v)
                chosen.append(k)
    m.model.train(was)
    if not logits:
        raise BadInputError("pieces", "no four-voice frames to fit voice-leading weights on")
    return np.stack(logits), np.stack(checks), np.array(voices), np.array(chosen)


def voicing_nll(logits: np.ndarray, checks: np.ndarray, voices: np.ndarray, chosen: np.ndarray,
                weights: np.ndarray | None) -> float:
    """Mean NLL per position (:func:`voicing_positions`) with these voice-leading weights."""
    x = logits.astype(np.float64)
    if weights is not None:
        x = x + (checks * weights[voices][:, None, :]).sum(-1)
    x = x - x.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(x).sum(1)) - x[np.arange(len(chosen)), chosen]))


def fit_voicing(logits: np.ndarray, checks: np.ndarray, voices: np.ndarray, chosen: np.ndarray, *,
                l2: float = 1.0) -> np.ndarray:
    """The maximum-likelihood voice-leading weights (4, len(VOICE_RULES)) at these positions
    (:func:`voicing_positions`), the network held fixed: a convex problem in 32 numbers, solved
    by L-BFGS. ``l2`` (on the summed NLL) keeps a weight finite where the pieces never choose
    what a check flags."""
    L = torch.from_numpy(logits).float()
    F = torch.from_numpy(checks).float()
    V = torch.from_numpy(voices).long()
    Y = torch.from_numpy(chosen).long()
    w = torch.zeros(4, F.shape[-1], requires_grad=True)
    # summed, not averaged: over 10^5 positions a mean's gradients fall below L-BFGS's tolerances
    opt = torch.optim.LBFGS([w], max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        x = L + (F * w[V][:, None, :]).sum(-1)
        loss = torch.nn.functional.cross_entropy(x, Y, reduction="sum") + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().astype(np.float32)


def voicing_rates(pieces: list[np.ndarray], *, skip_last_bar: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per voice, how often the chosen note fails each voice-leading check (4, len(VOICE_RULES)),
    over the positions counted (4,); ``skip_last_bar``: not the last bar (a sample's cadence)."""
    from tunesmith.represent.voicing import grid_positions

    hits, n = np.zeros((4, len(VOICE_RULES))), np.zeros(4)
    for ids in pieces:
        meter = satb.METERS[int(ids[0]) - satb.METER0]
        n_frames = (len(ids) - 1) // satb.FRAME
        stop = n_frames - satb.bar_steps(meter) if skip_last_bar else n_frames
        for i, v, k, f in grid_positions(ids):
            if (i - 1) // satb.FRAME >= stop:
                break
            hits[v] += f[k]
            n[v] += 1
    # (a piece is four voices: every sampled one is, and a training piece without them is skipped)
    return hits / np.maximum(n, 1)[:, None], n
