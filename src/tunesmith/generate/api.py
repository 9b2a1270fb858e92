"""The Python API for generation: ``load_model(name_or_path).generate(...)`` → Score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import symusic
import torch

from tunesmith.errors import BadInputError, OptionError, ParameterError
from tunesmith.fileio import write_json
from tunesmith.generate.base import (
    DEFAULT_TOP_P,
    PRIMER_BARS,
    Generated,
    Generator,
    capabilities,
    check_controls,
    default_top_p,
    first_bars,
)
from tunesmith.generate.constraints import RemiConstraint
from tunesmith.generate.copyguard import guard_for_dataset
from tunesmith.generate.sampler import SamplingControls, sample
from tunesmith.models import registry
from tunesmith.models.checkpoint import write_checkpoint
from tunesmith.music.keys import key_name, key_reading, parse_key, scale_pitch_classes, score_key
from tunesmith.music.melody import melody_of, release_overlaps
from tunesmith.music.score import Meta, Score
from tunesmith.represent.tokens import EventTokenizer, assign_voice_programs

MAX_BARS = 256
MAX_NUM = 100

SYMBOLIC_KINDS = ("tokens", "roll")
GENERATIVE_FAMILIES = tuple(n for n, f in registry.FAMILIES.items() if f.kind in SYMBOLIC_KINDS)


def bundled_models() -> list[str]:
    """The bundled models that ``generate`` can use (the audio models live beside them)."""
    return [n for k in SYMBOLIC_KINDS for n in registry.bundled(k)]


class MusicModel:
    """A trained sequence model with its tokenizer: generate, save, load."""

    # ``rules`` here is the melodic rule (end on the tonic); four-part rules need SATB tokens
    capabilities = frozenset({"primer", "key", "temperature", "top_k", "top_p", "cache", "device", "rules"})

    def __init__(self, model: torch.nn.Module, tokenizer: EventTokenizer, config: dict, name: str = "",
                 device: str = "cpu"):
        self.model = model.eval()
        if hasattr(model, "int8_sampling"):
            model.int8_sampling = True  # one token at a time on a CPU: int8 weights (see the model's class)
        self.tokenizer = tokenizer
        self.config = config
        self.name = name or config.get("name", "model")
        self.device = device
        self.styles: list[str] = list(config.get("styles") or [])
        if self.styles:  # a model trained with style tokens (train --styles) can be asked for one
            self.capabilities = MusicModel.capabilities | {"style"}

    def style_names(self) -> list[str]:
        """The styles this model can be asked for: its collections and regions (without the
        catch-all ``region:other`` / ``region:none``)."""
        return [s.split(":", 1)[1] for s in self.styles if s not in ("region:other", "region:none")]

    @torch.inference_mode()
    def _choose_style(self, slots: list[np.ndarray], controls: SamplingControls, seed: int) -> list[int]:
        """One token per style slot, drawn from the model among that slot's allowed ids."""
        from tunesmith.generate.sampler import filter_logits

        g = torch.Generator().manual_seed(seed + 7919)
        seq = [self.tokenizer.bos_id]
        for ids in slots:
            if len(ids) == 1:
                seq.append(int(ids[0]))
                continue
            logits, _ = self.model.step(torch.tensor([seq], device=self.device), None)
            allowed = torch.zeros(logits.shape[-1], dtype=torch.bool)
            allowed[torch.from_numpy(ids)] = True
            probs = filter_logits(logits[0, -1].cpu(), SamplingControls(controls.temperature), allowed)
            seq.append(int(torch.multinomial(probs, 1, generator=g)))
        return seq[1:]

    def _style_slots(self, style: str | None) -> list[np.ndarray]:
        """For the two style tokens after BOS (collection, region), the ids allowed at each:
        the one asked for, or every token of that slot (then the model chooses)."""
        if style is not None and not self.styles:
            raise ParameterError("style", f"the model '{self.name}' was trained without style tokens")
        first = self.tokenizer.vocab_size
        slots = []
        for kind in ("collection", "region"):
            names = [s for s in self.styles if s.startswith(kind + ":")]
            slots.append(np.array([first + self.styles.index(n) for n in names]))
        if style is None:
            return slots
        wanted = style if ":" in style else None
        matches = [n for n in self.styles if n == wanted or n.split(":", 1)[1].lower() == style.lower()]
        if not matches:
            raise ParameterError("style", f"unknown style '{style}'; this model knows: "
                                 f"{', '.join(self.style_names())}")
        n = matches[0]
        slot = 0 if n.startswith("collection:") else 1
        slots[slot] = np.array([first + self.styles.index(n)])
        if slot == 1:  # a region of the Essen collection
            essen = "collection:essen"
            if essen in self.styles:
                slots[0] = np.array([first + self.styles.index(essen)])
        return slots

    # -- persistence -----------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path, *, device: str = "cpu") -> MusicModel:
        model, cfg, path = registry.load(name_or_path, families=registry.SEQUENCE_FAMILIES)
        return cls.from_loaded(model, cfg, path, device=device)

    @classmethod
    def from_loaded(cls, model, cfg: dict, path: Path, *, device: str = "cpu"):
        """The wrapper for this checkpoint's representation: :class:`MusicModel` for event
        tokens, :class:`~tunesmith.generate.chorale.ChoraleTokenModel` for SATB tokens."""
        if cfg.get("tokenizer", {}).get("kind") == "satb":
            from tunesmith.generate.chorale import ChoraleTokenModel

            return ChoraleTokenModel.from_loaded(model, cfg, path, device=device)
        if "tokenizer" not in cfg:
            raise BadInputError(path, "checkpoint has no tokenizer in config.json (a frame-token benchmark "
                                "checkpoint? evaluate it with 'tunesmith bench nll --checkpoint')")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise OptionError("--device", "CUDA is not available on this machine")
        tok = EventTokenizer.from_dict(cfg["tokenizer"])
        return cls(model.to(device), tok, cfg, name=registry.model_name(path, cfg), device=device)

    def save(self, path: str | Path) -> Path:
        return write_checkpoint(Path(path), self.model, self.config)

    # -- generation ------------------------------------------------------------
    def generate(self, *, primer: Score | None = None, bars: int = 8, temperature: float = 1.0,
                 top_k: int = 0, top_p: float | None = None, key: str | None = None, seed: int = 0,
                 use_cache: bool = True, rules: str = "strict", style: str | None = None) -> Generated:
        """Generate ``bars`` bars of new music (after ``primer`` if given).

        ``key`` transposes the result (and the primer) to that key; without a
        primer, up to 8 draws are made until one is in the requested mode. ``style`` (models
        trained with ``--styles``) names a collection or region of the training data.
        ``top_p`` left at None is the model's own default (:func:`~tunesmith.generate.base.default_top_p`)."""
        controls = SamplingControls(temperature, top_k, default_top_p(self) if top_p is None else top_p)
        controls.check()
        check_bars(bars)
        self._slots = self._style_slots(style) if (style is not None or self.styles) else []
        from tunesmith.generate.rules import check_mode

        check_mode(rules)
        want = parse_key(key) if key else None
        if primer is not None:
            primer, note = first_bars(primer, PRIMER_BARS, "primer")
            line = None
            if self._single_line():
                primer, line = self._primer_line(primer)
            g = self._continue(primer, bars, controls, want, seed, use_cache, rules)
            if g.report is not None:
                if note:
                    g.report["primer"] = note
                if line:
                    g.report["primer_melody"] = line
            return g
        tries = 8 if want else 1
        best = None
        for attempt in range(tries):
            g = self._sample_from(None, bars, controls, seed * 1009 + attempt, use_cache, rules)
            g.score.meta.title = f"{self.name} #{seed}"
            tonic, mode = score_key(g.score)
            if want is None:
                g.key = g.score.meta.key
                return g
            if mode == want[1]:
                return self._transposed(g, (want[0] - tonic), want)
            best = best or (g, tonic, mode)
        g, tonic, mode = best
        # No draw in the requested mode: move to the relative key so the scale matches.
        rel = want[0] + (3 if want[1] == "minor" else -3)
        return self._transposed(g, rel - tonic, (tonic + (rel - tonic), mode))

    def _transposed(self, g: Generated, shift: int, key: tuple[int, str]) -> Generated:
        shift = ((shift + 6) % 12) - 6  # nearest direction: −6 … +5
        g.score = g.score.transpose(shift)
        g.key = key_name(*key)
        g.score.meta.key = g.key
        return g

    def _primer_line(self, primer: Score) -> tuple[Score, str | None]:
        """A single-line model's primer as the one line it learned: the melody of a piece of several
        parts, or of a recording (its played note at each onset, not the overtones heard beside it),
        each note released where the next begins. A transcribed flute jig, its notes ringing on into
        the next, read to the folk model as durations no tune of its corpus has, and it went on with
        chords of up to twenty notes. Returns the line and what was done to it (None: nothing)."""
        tracks = [t for t in primer.music.tracks if len(t.notes) and not t.is_drum]
        if not tracks:
            return primer, None  # refused later, with the reason
        notes = sorted(tracks[0].notes, key=lambda n: (n.time, -n.pitch))
        rings = any(a.end > b.time for a, b in zip(notes, notes[1:]))  # a note still sounding as the next begins
        if len(tracks) == 1 and not rings:
            return primer, None
        mel = melody_of(primer)
        return mel.score, f"{mel.describe()}; each note released where the next begins (this model writes one line)"

    def _continue(self, primer: Score, bars, controls, want, seed, use_cache, rules="strict") -> Generated:
        primer = Score(assign_voice_programs(primer.music), primer.meta)
        if want is not None:
            tonic, mode = score_key(primer)
            # Same mode: move the tonic; other mode: move to the relative key (same scale as asked).
            target = want[0] if mode == want[1] else want[0] + (3 if want[1] == "minor" else -3)
            primer = primer.transpose(((target - tonic + 6) % 12) - 6)
            primer.meta.key = key_name(*want)
        # an instrument the model never learned is read as one it did, and given back afterwards: the
        # folk model (its tunes all on program 0) continued a flute's primer, its notes then bound to
        # the flute's program token, with one note a bar on the bar's last position
        known = [int(x) for x in self.config.get("programs") or []]
        tracks = [t for t in primer.music.tracks if not t.is_drum]
        back: dict[int, int] = {}
        if known and any(t.program not in known for t in tracks):
            primer = primer.copy()
            for i, t in enumerate(t for t in primer.music.tracks if not t.is_drum):
                back[known[i % len(known)]] = int(t.program)
                t.program = known[i % len(known)]
        g = self._sample_from(primer, bars, controls, seed, use_cache, rules)
        for t in g.score.music.tracks:
            if not t.is_drum and t.program in back:
                t.program = back[t.program]
        return g

    def copy_guard(self, *, progress: bool = False):
        """The originality guard of this model's training set (None where that data is not on
        this machine). The first call on a machine prepares the data: ``progress`` shows it."""
        data = self.config.get("dataset") or {}
        if not data.get("name"):
            return None
        return guard_for_dataset(str(data["name"]), data.get("manifest_sha256"), data.get("split_sha256"),
                                 progress=progress)

    def _single_line(self) -> bool:
        """Whether the model learned melodies (a corpus of single lines, such as folk): its
        notes sound one at a time."""
        from tunesmith.music.corpora import CORPORA

        data = self.config.get("dataset") or {}
        name = (data.get("name") if isinstance(data, dict) else data) or \
            (self.config.get("representation") or {}).get("dataset")
        return bool(name in CORPORA and CORPORA[name].single_line)

    def prepare(self, *, rules: str | None = None, progress: bool = False) -> None:
        """Once-per-machine work before the first piece, with progress shown (the copy guard)."""
        if rules != "off":
            self.copy_guard(progress=progress)

    def _sample_from(self, primer: Score | None, bars, controls, seed, use_cache, rules="strict") -> Generated:
        tok = self.tokenizer
        prompt = [tok.bos_id]
        ts = None
        scale = None
        if primer is not None:
            ids = tok.encode(primer)
            if len(ids) == 0:
                raise BadInputError(primer.meta.source or "primer", "primer has no notes")
            prompt += [int(i) for i in ids]
            ts = primer.time_signature()
            tonic, mode = score_key(primer)
            scale = scale_pitch_classes(tonic, mode)
        programs = set(self.config.get("programs") or [])
        if primer is not None:
            programs = {int(t.program) for t in primer.music.tracks if not t.is_drum} or programs
        guard = self.copy_guard() if rules != "off" else None
        con = RemiConstraint(tok, bars=bars, time_signature=ts, scale_pcs=scale, programs=programs or None,
                             end_on_tonic=rules != "off",
                             tonic=score_key(primer)[0] if primer is not None else None, guard=guard,
                             single_line=self._single_line())
        con.observe_prompt(prompt[1:])
        # style tokens come right after BOS (given, or chosen by the model), then the music
        style = self._choose_style(getattr(self, "_slots", []), controls, seed)
        new = sample(self.model, prompt[:1] + style + prompt[1:], con, controls, seed=seed, use_cache=use_cache,
                     device=self.device)
        full = tok.decode(prompt + new).music
        released = 0
        if self._single_line():
            # a melody sounds one note at a time: a sampled duration that runs past the next sampled
            # onset (7 of 1,005 notes of 30 folk tunes; one, in a pickup bar, broke music21's MusicXML)
            # is released where that onset begins — the onsets, the tune's rhythm, are the model's
            released = release_overlaps(full, single_line=True)
        if primer is not None:
            music = _merge_primer(primer.music, tok.decode(prompt).music, full)
            if self._single_line():  # the primer's last note released where the continuation begins
                released += release_overlaps(music, single_line=True)
        else:
            music = full.resample(480, min_dur=1)
            _play_at(music, self.config.get("playback") or {})
        n_prefix_bars = _bars_covering(primer.music) if primer is not None else 0
        # (con.bars counts a pickup bar); under the rules the tune's final tonic is held to the bar line
        _clip_to_bars(music, n_prefix_bars + con.bars, hold_last=con.end_on_tonic and not con.forced_stops)
        # the key as analyze would name it: a tune in a church mode keeps its mode ("E dorian"), and
        # its sheet music that mode's signature
        meta = Meta(title=f"{self.name} #{seed}", composer=f"tunesmith ({self.name})", source="generated",
                    key=key_reading(primer if primer is not None else Score(music)),
                    time_signature=Score(music).time_signature())
        report = {"rules": rules, "end_on_tonic": con.end_on_tonic, "tonic": con.tonic,
                  **({"style": [self.styles[t - tok.vocab_size] for t in style]} if style else {}),
                  "relaxed": {"end_on_tonic": con.relaxed} if con.relaxed else {}, "n_relaxed": con.relaxed,
                  **({"pickup": "the tune begins with an upbeat: a partial bar before the bars asked for"}
                     if con.pickup else {})}
        if released:
            report["released_overlaps"] = released
        if rules != "off":
            report["copy_guard"] = (guard.report(con.copy_masked, con.copy_relaxed) if guard is not None else
                                    "not applied: the model's training data is not on this machine")
        made = bars
        if con.forced_stops:  # the token cap ended it: say how much music there is, never claim the bars asked
            made = max(0, min(bars, _bars_covering(music) - n_prefix_bars - int(con.pickup)))
            report["stopped_early"] = (f"the token cap ({con.max_tokens} tokens) ended the piece after {made} of "
                                       f"{bars} bars")
        return Generated(Score(music, meta), meta.key, made, con.forced_stops, len(new), new, report=report)


def _merge_primer(primer: symusic.Score, prompt_dec: symusic.Score, full_dec: symusic.Score) -> symusic.Score:
    """The primer's own notes, then the notes that decoding the continuation added. A decoded note
    is the primer's when its program, onset and pitch are (not its length: a single-line model
    releases notes that ring into the next, and a recording's transcribed notes do; matching lengths
    too wrote such a primer twice, once as played and once released)."""
    out = primer.copy()
    out = out.resample(480, min_dur=1) if out.tpq != 480 else out
    full = full_dec.resample(480, min_dur=1)
    before = prompt_dec.resample(480, min_dur=1)
    seen: dict[tuple, int] = {}
    for tr in before.tracks:
        for n in tr.notes:
            k = (tr.program, n.time, n.pitch)
            seen[k] = seen.get(k, 0) + 1
    by_prog = {t.program: t for t in out.tracks}
    for tr in full.tracks:
        for n in tr.notes:
            k = (tr.program, n.time, n.pitch)
            if seen.get(k, 0) > 0:
                seen[k] -= 1
                continue
            if tr.program not in by_prog:
                nt = symusic.Track(name=tr.name, program=tr.program, is_drum=tr.is_drum)
                out.tracks.append(nt)
                by_prog[tr.program] = nt
            by_prog[tr.program].notes.append(symusic.Note(n.time, n.duration, n.pitch, n.velocity))
    for t in out.tracks:
        t.notes.sort()
    return out


def _play_at(music: symusic.Score, playback: dict) -> None:
    """A new piece plays at the tempo its model card declares (``config.json`` ``playback``),
    not at the nearest step of the tokenizer's tempo grid (120 qpm is written as 121.29)."""
    if playback.get("tempo"):
        music.tempos.clear()
        music.tempos.append(symusic.Tempo(0, qpm=float(playback["tempo"])))


def _bars_covering(music: symusic.Score) -> int:
    end = music.end()
    down = music.get_downbeats()
    return int(np.searchsorted(down, end, side="left")) if len(down) else 0


def _clip_to_bars(music: symusic.Score, n_bars: int, *, hold_last: bool = False) -> None:
    """Drop notes after bar ``n_bars`` and shorten notes that ring past it. ``hold_last``:
    the notes struck last ring on to that bar line (a tune's final note is held, not cut
    short by a silence before the end of its bar), or, in a tune that began with an upbeat,
    to the upbeat's length before it."""
    if not len(music.time_signatures):
        return
    ts = music.time_signatures[0]
    bar = music.tpq * 4 * ts.numerator // ts.denominator
    down = list(music.get_downbeats())
    while len(down) <= n_bars:
        down.append((down[-1] if down else 0) + bar)
    end = int(down[n_bars])
    for tr in music.tracks:
        keep = [symusic.Note(n.time, min(n.duration, end - n.time), n.pitch, n.velocity)
                for n in tr.notes if n.time < end]
        tr.notes.clear()
        for n in keep:
            tr.notes.append(n)
    if hold_last:
        last = max((n.time for tr in music.tracks for n in tr.notes), default=None)
        # a tune that began with an upbeat ends with a bar short by as much, as written tunes
        # do (the two make one bar when the tune is repeated)
        first = min((n.time for tr in music.tracks for n in tr.notes), default=0)
        upbeat = int(down[1]) - first if 0 < first < int(down[1]) else 0
        to = end - upbeat if last is not None and last < end - upbeat else end
        for tr in music.tracks:
            for n in tr.notes:
                if n.time == last and n.end < to:
                    n.duration = to - n.time


def check_bars(bars: int) -> None:
    if not 1 <= bars <= MAX_BARS:
        raise OptionError("--bars", f"must be between 1 and {MAX_BARS}, got {bars}")


def parse_formats(formats: str) -> list[str]:
    fmts = [f.strip().lower() for f in formats.split(",") if f.strip()]
    bad = [f for f in fmts if f not in EXTENSIONS]
    if bad or not fmts:
        raise OptionError("--formats", f"unknown format(s) {', '.join(bad) or '(none)'}; use "
                          f"{', '.join(EXTENSIONS)}")
    return fmts


def check_out_dir(out: str | Path) -> Path:
    """The output folder, checked before any work: it is (or can be made) a writable folder."""
    return check_writable_dir(out, "--out")


def check_writable_dir(path: str | Path, option: str = "--out") -> Path:
    """Check, before any work, that a folder can be created (if missing) and written: a temporary
    folder is made and removed in the nearest existing ancestor. Raises an OptionError naming
    the option and the reason; creates nothing that stays."""
    import os
    import tempfile

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OptionError(option, f"'{p}' exists and is not a folder")
    anc = p
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise OptionError(option, f"cannot create '{p}': '{anc}' is not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".tunesmith-probe-", dir=anc)
        os.rmdir(probe)
    except OSError as e:
        raise OptionError(option, f"cannot write to '{p}' ({e.strerror or e})") from None
    return p



EXTENSIONS = {"mid": ".mid", "wav": ".wav", "musicxml": ".musicxml", "png": ".png", "flac": ".flac", "ogg": ".ogg",
              "mp3": ".mp3"}


def output_path(base: Path, ext: str) -> Path:
    """``base`` + ``ext``, the whole name kept (``St. Anne-harmonize-000`` + ``.mid``, not
    ``St.mid`` as ``Path.with_suffix`` would make it)."""
    return base.parent / (base.name + ext)


def check_not_taken(bases: list[Path], fmts: list[str], force: bool) -> None:
    """Refuse, before any work, to replace an earlier piece unless ``force``."""
    if force:
        return
    for base in bases:
        for ext in [EXTENSIONS[f] for f in fmts] + [".json"]:
            p = output_path(base, ext)
            if p.exists():
                raise ParameterError("force", f"{p} already exists; pass --force to replace it, or choose "
                                     "another --out or --seed")


def write_formats(score: Score, base: Path, fmts: list[str]) -> list[Path]:
    """``base``.mid / .wav / .musicxml / .png, as asked (each written atomically; if one cannot be
    written, those written before it are removed: a piece's files are all there or none is)."""
    from tunesmith.music.io import save_midi, save_musicxml
    from tunesmith.music.plot import save_pianoroll_png
    from tunesmith.music.render import render_audio

    files = []
    try:
        if "mid" in fmts:
            files.append(save_midi(score, output_path(base, ".mid")))
        audio = [output_path(base, EXTENSIONS[f]) for f in ("wav", "flac", "ogg", "mp3") if f in fmts]
        if audio:
            files.extend(render_audio(score, audio))
        if "musicxml" in fmts:
            files.append(save_musicxml(score, output_path(base, ".musicxml")))
        if "png" in fmts:
            files.append(save_pianoroll_png(score, output_path(base, ".png"), title=score.meta.title))
    except BaseException:
        for f in files:
            Path(f).unlink(missing_ok=True)
        raise
    return files


def load_model(name_or_path: str | Path, *, device: str = "cpu"):
    """Any model that generates music, through the family registry: a sequence model
    (:class:`MusicModel`), a piano-roll model (Coconet, GAN) or a note GAN (audio),
    each behind its family's wrapper."""
    model, cfg, path = registry.load(name_or_path)
    fam = registry.family(cfg["family"])
    wrapper = fam.wrapper_class()
    if "device" in fam.capabilities:
        return wrapper.from_loaded(model, cfg, path, device=device)
    if device != "cpu":
        raise OptionError("--device", f"a {fam.name} model generates on the CPU only")
    return wrapper.from_loaded(model, cfg, path)


def generate_to_files(model: str, out: str | Path, *, primer: str | None = None, bars: int = 8,
                      temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                      key: str | None = None, seed: int = 0, num: int = 1, use_cache: bool | None = None,
                      formats: str = "mid,wav,musicxml,png", device: str = "cpu",
                      iterations: int | None = None, latent_scale: float | None = None,
                      threshold: float | None = None, rules: str | None = None, style: str | None = None,
                      force: bool = False, tempo: float | None = None, instruments: str | None = None,
                      progress: bool = False) -> list[dict]:
    """Generate ``num`` pieces and write each as MIDI, WAV, MusicXML and a piano-roll PNG.
    A control left at None takes the model's own default; a control the model's family
    cannot honour is refused before any work (never dropped)."""
    from tunesmith.music.io import load_score

    # Every option is checked before any work.
    SamplingControls(1.0 if temperature is None else temperature, 0 if top_k is None else top_k,
                     DEFAULT_TOP_P if top_p is None else top_p).check()
    check_bars(bars)
    if not 1 <= num <= MAX_NUM:
        raise OptionError("--num", f"must be between 1 and {MAX_NUM}, got {num}")
    if key:
        parse_key(key)
    if rules is not None:
        from tunesmith.generate.rules import check_mode

        check_mode(rules)
    from tunesmith.music.arrange import arranged, check_tempo, parse_instruments

    check_tempo(tempo)
    programs = parse_instruments(instruments) if instruments else None
    fmts = parse_formats(formats)
    out = check_out_dir(out)
    stem = Path(model).name if Path(model).exists() else model
    check_not_taken([out / f"{stem}-{seed + i:03d}" for i in range(num)], fmts, force)
    mm = load_model(model, device=device)
    if not isinstance(mm, Generator) or "audio" in capabilities(mm):
        raise ParameterError("model", f"'{model}' is a {mm.config.get('family')} model: it makes notes as audio; "
                             "use 'tunesmith audio generate'")
    controls = check_controls(mm, {"primer": primer, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                                   "key": key, "use_cache": None if use_cache in (None, True) else use_cache,
                                   "iterations": iterations, "latent_scale": latent_scale, "threshold": threshold,
                                   "rules": rules, "style": style})
    if "primer" in controls:
        controls["primer"] = load_score(primer)
    out.mkdir(parents=True, exist_ok=True)
    from tunesmith import __version__

    if "top_p" in capabilities(mm) and "top_p" not in controls:
        controls["top_p"] = default_top_p(mm)  # the model's own default, written into the .json
    trained_on = (mm.config.get("dataset") or {}).get("name") if isinstance(mm.config.get("dataset"), dict) else None
    settings = {"model": str(model), "family": mm.config.get("family"), "bars": bars, "device": device,
                **({"trained_on": trained_on} if trained_on else {}),
                **({"tempo": tempo} if tempo is not None else {}), **({"instruments": instruments} if instruments else {}),
                **{k: (primer if k == "primer" else v) for k, v in controls.items()}}
    from tunesmith.progress import progress_bar

    if progress and hasattr(mm, "prepare"):
        mm.prepare(rules=controls.get("rules"), progress=True)
    results = []
    with progress_bar(f"generate {stem}", num, enabled=progress) as starting:
        pieces = []
        for i in range(num):
            starting(i)
            pieces.append(mm.generate(bars=bars, seed=seed + i, **controls))
    for i, g in enumerate(pieces):
        base = out / f"{stem}-{seed + i:03d}"
        files = write_formats(arranged(g.score, tempo=tempo, instruments=programs), base, fmts)
        info = {"files": [str(f) for f in files], "key": g.key, "bars": g.bars, "notes": g.score.n_notes,
                "tokens": g.n_tokens, "repairs": g.repairs, "seed": seed + i,
                "settings": {**settings, "seed": seed + i}, "tunesmith": __version__}
        if g.report is not None:
            info["rules"] = g.report
        write_json(output_path(base, ".json"), info)
        results.append(info)
    return results
