"""CLI: ``tunesmith audio dataset | train | train-classifier | evaluate | generate | play-score``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tunesmith.cli_common import add_renamed
from tunesmith.errors import OptionError
from tunesmith.fileio import write_json


def _int_list(text: str, option: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise OptionError(option, f"'{text}' is not a comma list of numbers") from None


def _range(text: str, option: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split("-", 1)) if "-" in text else (int(text), int(text))
    except ValueError:
        raise OptionError(option, f"'{text}' is not a range like 36-84") from None
    return a, b


def _threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n < 1:
            raise OptionError("--threads", f"must be at least 1, got {n}")
        torch.set_num_threads(n)


def add_commands(sub: argparse._SubParsersAction) -> None:
    from tunesmith.models.registry import bundled

    notes_models = f"bundled {', '.join(bundled('notes'))}, or a run / checkpoint folder of a note GAN"
    a = sub.add_parser("audio", help="notes as raw audio: a rendered data set, a WaveGAN, its evaluation")
    asub = a.add_subparsers(dest="audio_command", required=True, metavar="ACTION")

    s = asub.add_parser("dataset", help="render single notes with FluidSynth into an NSynth-like data set")
    s.add_argument("--out", help="data set folder (default: $TUNESMITH_HOME/audio/notes)")
    s.add_argument("--programs", default="0,24,40,73", help="GM programs, 0-based (default: piano, guitar, violin, flute)")
    s.add_argument("--pitches", default="36-84", help="MIDI pitch range (default 36-84)")
    s.add_argument("--velocities", default="50,80,110")
    s.add_argument("--sample-rate", type=int, default=16000)
    s.add_argument("--length", type=int, default=16384, help="samples per clip (default 16384)")
    s.add_argument("--hold", type=float, default=0.75, help="seconds before the note is released")
    s.add_argument("--soundfont", help="a .sf2 file (default: pretty_midi's TimGM6mb.sf2)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_dataset)

    s = asub.add_parser("train", help="train a note GAN (ddsp-gan, the default, or the classic wavegan)")
    s.add_argument("--data", required=True, help="a folder made by 'tunesmith audio dataset'")
    s.add_argument("--out", required=True, help="run folder")
    s.add_argument("--family", choices=("ddsp-gan", "wavegan"),
                   help="ddsp-gan: harmonic-plus-noise synthesizer driven by a GRU, pitch exact by construction "
                        "(default; with --resume, the run's); wavegan: WaveGAN, the source document's waveform "
                        "generator")
    s.add_argument("--width", type=int, help="wavegan: width multiplier d (paper 64; default 8 for a CPU)")
    s.add_argument("--hidden", type=int, help="ddsp-gan: control network width (default 192)")
    s.add_argument("--harmonics", type=int, help="ddsp-gan: number of harmonics (default 96)")
    s.add_argument("--warmup-steps", type=int, help="ddsp-gan: reconstruction-only steps before the critics "
                   "join (default 0)")
    s.add_argument("--epochs", type=int, default=20)
    s.add_argument("--steps-per-epoch", type=int, default=50)
    s.add_argument("--batch-size", type=int, help="default 16 (ddsp-gan) or 32 (wavegan)")
    s.add_argument("--lr", type=float, help="default 2e-4 (ddsp-gan) or 1e-4 (wavegan)")
    s.add_argument("--n-critic", type=int, help="wavegan: critic updates per generator update (default 5)")
    s.add_argument("--train-minutes", type=float, help="training time budget (minutes)")
    s.add_argument("--max-steps", type=int)
    s.add_argument("--checkpoint-every", type=int, default=25)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    s.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (several GPUs: launch with torchrun)")
    s.add_argument("--resume", action="store_true")
    s.add_argument("--quiet", action="store_true")
    add_renamed(s, "--max-minutes")
    s.set_defaults(func=cmd_train)

    s = asub.add_parser("train-classifier", help="train the pitch/instrument classifier used for evaluation")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True, help="run folder (best/, last/, metrics, curves)")
    s.add_argument("--epochs", type=int, default=30)
    s.add_argument("--segments", type=int, default=4, help="stretches of time the spectrum is averaged over "
                   "(default 4: onset, sustain, release; more see more of the envelope)")
    s.add_argument("--family-weight", type=float, default=0.5, help="weight of the instrument-family loss "
                   "beside the pitch loss (default 0.5)")
    s.add_argument("--train-minutes", type=float, help="training time budget (minutes)")
    s.add_argument("--max-steps", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    s.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (several GPUs: launch with torchrun)")
    s.add_argument("--resume", action="store_true")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_train_classifier)

    s = asub.add_parser("evaluate", help="pitch accuracy, inception score, Fréchet distance and NDB of a note GAN")
    s.add_argument("--model", default="notes-gan", help=notes_models)
    s.add_argument("--classifier", default="notes-classifier", help="bundled notes-classifier, or a checkpoint folder")
    s.add_argument("--data", required=True, help="the note data set (train split for NDB and the ceiling; "
                   "valid + test splits held out)")
    s.add_argument("--out", help="write evaluation.json and generated-vs-real.png (spectrograms) here")
    s.add_argument("--no-pyin", action="store_true", help="skip the pYIN pitch check (the slowest part)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    s.set_defaults(func=cmd_evaluate)

    s = asub.add_parser("generate", help="generate notes as WAV files")
    s.add_argument("--model", default="notes-gan", help=notes_models)
    s.add_argument("--pitch", type=int, default=60, help="MIDI pitch (60 = middle C)")
    s.add_argument("--instrument", help="piano, guitar, violin, flute… (one the model was trained on)")
    s.add_argument("--velocity", type=int, help="1-127 (ddsp-gan models; default 80)")
    s.add_argument("--duration", type=float, help="seconds the note is held before its release "
                   "(ddsp-gan models; default as in the training clips, 0.75)")
    s.add_argument("--latent-scale", type=float, help="spread of the latent z (ddsp-gan models; 0: the most "
                   "typical note, larger: more varied; default: the model's own)")
    s.add_argument("--num", type=int, default=8, help="how many notes (1-256)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="output folder")
    s.set_defaults(func=cmd_generate)

    s = asub.add_parser("play-score", help="render a MIDI/MusicXML/ABC file with notes generated by the GAN")
    s.add_argument("file")
    s.add_argument("--model", default="notes-gan", help=notes_models)
    s.add_argument("--instrument", help="one instrument, or one per track separated by commas "
                   "(e.g. violin,flute,guitar,piano; the last is repeated for further tracks)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--piece", type=int, default=1, help="which tune of a multi-tune file (1-based)")
    s.add_argument("--out", help="WAV path (default: FILE stem + -gan.wav)")
    s.set_defaults(func=cmd_play_score)


def cmd_dataset(a: argparse.Namespace) -> int:
    from tunesmith.music.dataset import tunesmith_home
    from tunesmith.music.notes import AudioDataParams, build

    lo, hi = _range(a.pitches, "--pitches")
    p = AudioDataParams(programs=_int_list(a.programs, "--programs"), pitch_lo=lo, pitch_hi=hi,
                        velocities=_int_list(a.velocities, "--velocities"), sample_rate=a.sample_rate,
                        length=a.length, hold=a.hold)
    out = Path(a.out) if a.out else tunesmith_home() / "audio" / "notes"
    info = build(out, p, soundfont=a.soundfont, progress=not a.quiet)
    c = info["counts"]
    print(f"{out}: {sum(c.values())} clips (train {c['train']}, valid {c['valid']}, test {c['test']}); "
          f"{info['rendered_programs']} program(s) rendered now, {len(p.programs) - info['rendered_programs']} kept")
    return 0


FAMILY_OPTIONS = {"wavegan": ("--width", "--n-critic"), "ddsp-gan": ("--hidden", "--harmonics", "--warmup-steps")}


def cmd_train(a: argparse.Namespace) -> int:
    from tunesmith.train.loop import check_device
    from tunesmith.train.notes import WaveTrainConfig, train_notes

    check_device(a.device)  # before any work
    _threads(a.threads)
    if a.family is None:
        a.family = "ddsp-gan"
        if a.resume and (Path(a.out) / "last" / "config.json").is_file():
            from tunesmith.models.checkpoint import read_config

            a.family = read_config(Path(a.out) / "last").get("family", a.family)
    for fam, opts in FAMILY_OPTIONS.items():
        if fam == a.family:
            continue
        for opt in opts:
            if getattr(a, opt[2:].replace("-", "_")) is not None:
                raise OptionError(opt, f"applies to --family {fam} only, not {a.family}")
    ddsp = a.family == "ddsp-gan"
    overrides: dict = {}
    for opt, key in (("--width", "d"), ("--hidden", "hidden"), ("--harmonics", "n_harmonics")):
        v = getattr(a, opt[2:])
        if v is not None:
            if v < 1:
                raise OptionError(opt, f"must be at least 1, got {v}")
            overrides[key] = v
    if not ddsp:
        overrides.setdefault("d", 8)
    tc = WaveTrainConfig(epochs=a.epochs, steps_per_epoch=a.steps_per_epoch,
                         batch_size=a.batch_size or (16 if ddsp else 32), lr=a.lr or (2e-4 if ddsp else 1e-4),
                         n_critic=a.n_critic or 5, warmup_steps=a.warmup_steps or 0, max_minutes=a.train_minutes,
                         max_steps=a.max_steps, checkpoint_every=a.checkpoint_every, seed=a.seed, device=a.device)
    tc.check()
    s = train_notes(a.out, a.data, overrides, tc, family=a.family, resume=a.resume, progress=not a.quiet)
    print(f"trained {a.family} ({s['n_params']:,} parameters) for {s['steps']} steps in {s['seconds']:.0f} s "
          f"({s['seconds_per_step']:.2f} s/step, {s['stop_reason']}); checkpoints in {a.out}/best and {a.out}/last")
    return 0


def cmd_train_classifier(a: argparse.Namespace) -> int:
    from tunesmith.train.loop import check_device

    check_device(a.device)  # before any work
    from tunesmith.models.note_classifier import ClassifierConfig
    from tunesmith.music.notes import dataset_info
    from tunesmith.train.notes import ClassifierTrainConfig, train_classifier

    _threads(a.threads)
    info = dataset_info(a.data)
    prm = info["params"]
    if not 1 <= a.segments <= 64:
        raise OptionError("--segments", f"must be between 1 and 64, got {a.segments}")
    cfg = ClassifierConfig(n_pitches=prm["pitch_hi"] - prm["pitch_lo"] + 1, pitch_lo=prm["pitch_lo"],
                           families=sorted({p // 8 for p in info["programs"]}), sample_rate=prm["sample_rate"],
                           segments=a.segments)
    tc = ClassifierTrainConfig(epochs=a.epochs, family_weight=a.family_weight, max_minutes=a.train_minutes,
                               max_steps=a.max_steps, seed=a.seed, device=a.device)
    s = train_classifier(a.out, a.data, cfg, tc, resume=a.resume, progress=not a.quiet)
    acc = s.get("valid")
    told = (f"valid pitch accuracy {acc['pitch_accuracy']:.3f}, family accuracy {acc['family_accuracy']:.3f}"
            if acc else "no valid clips to score")
    print(f"classifier: {told} ({s['steps']} steps, {s['stop_reason']}); checkpoints in {a.out}/best and {a.out}/last")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from tunesmith.evaluate.notes import concat, evaluate_with_floor, save_comparison
    from tunesmith.generate.notes import NotesGAN, load_classifier
    from tunesmith.music.notes import load_split

    _threads(a.threads)
    gan = NotesGAN.load(a.model)
    clf = load_classifier(a.classifier)
    train = load_split(a.data, "train")
    test = concat(load_split(a.data, "valid"), load_split(a.data, "test"))
    if len(test.audio) < 10:
        raise OptionError("--data", f"only {len(test.audio)} held-out clips (valid + test); render more")
    missing = sorted({int(p) for p in test.program} - set(gan.programs))
    if missing:
        raise OptionError("--data", f"the model was not trained on program(s) {missing} of this data set")
    res = evaluate_with_floor(gan, clf, train, test, seed=a.seed, pyin=not a.no_pyin)
    out = {"model": a.model, "family": gan.family, "classifier": a.classifier, "generated": res["generated"],
           "real_heldout": res["real"], "at_init": res["at_init"]}
    rows = [("generated", out["generated"]), ("real training clips (ceiling)", out["real_heldout"]),
            (f"{gan.family} at init (floor)", out["at_init"])]
    pyin = "" if a.no_pyin else f" {'pYIN ±1st':>9s}"
    print(f"{'set':30s} {'pitch acc':>9s}{pyin} {'family acc':>10s} {'IS':>6s} {'FD':>8s} {'NDB/k':>6s}")
    for name, r in rows:
        py = "" if a.no_pyin else f" {r['pyin_within_semitone']:9.3f}"
        print(f"{name:30s} {r['pitch_accuracy']:9.3f}{py} {r['family_accuracy']:10.3f} {r['inception_score']:6.2f} "
              f"{r['frechet_distance']:8.2f} {r['ndb_over_k']:6.2f}")
    if a.out:

        d = Path(a.out)
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "evaluation.json", out)
        save_comparison(res["fake_audio"], test, gan, d / "generated-vs-real.png")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from tunesmith.generate.api import check_out_dir
    from tunesmith.generate.notes import MAX_NOTES, NotesGAN, write_clips
    from tunesmith.music.plot import save_spectrograms

    if not 1 <= a.num <= MAX_NOTES:
        raise OptionError("--num", f"must be between 1 and {MAX_NOTES}, got {a.num}")
    out = check_out_dir(a.out)
    gan = NotesGAN.load(a.model)
    gan.check_pitch(a.pitch)
    inst_i = gan.instrument_index(a.instrument)
    clips = gan.generate(a.pitch, a.instrument, num=a.num, seed=a.seed, velocity=a.velocity, duration=a.duration,
                         latent_scale=a.latent_scale)
    inst = gan.instruments()[inst_i].replace(" ", "-")
    stem = f"{inst}-{a.pitch}-seed{a.seed}"
    files = write_clips(clips, out, stem, gan.sample_rate)
    png = save_spectrograms(clips[:16], [f.stem for f in files[:16]], out / f"{stem}.png", gan.sample_rate)
    print(f"wrote {len(files)} WAV files ({gan.sample_rate} Hz, {clips.shape[1] / gan.sample_rate:.2f} s each, "
          f"{gan.instruments()[inst_i]}, pitch {a.pitch}) and {png}")
    return 0


def cmd_play_score(a: argparse.Namespace) -> int:
    from tunesmith.generate.notes import NotesGAN
    from tunesmith.music.io import read_pieces
    from tunesmith.music.render import write_wav

    pieces = read_pieces(a.file).scores
    if not 1 <= a.piece <= len(pieces):
        raise OptionError("--piece", f"{a.file} holds {len(pieces)} piece(s); got {a.piece}")
    gan = NotesGAN.load(a.model)
    insts = [x.strip() for x in a.instrument.split(",")] if a.instrument else [None]
    if a.instrument and any(not x for x in insts):
        raise OptionError("--instrument", f"'{a.instrument}' has an empty name; give names separated by commas")
    for x in insts:
        gan.instrument_index(x)
    out = Path(a.out) if a.out else Path(a.file).with_name(Path(a.file).stem + "-gan.wav")
    if out.exists() and out.is_dir():
        raise OptionError("--out", f"'{out}' is a folder; give a .wav file name")
    audio = gan.play_score(pieces[a.piece - 1], insts, seed=a.seed)
    write_wav(out, audio, gan.sample_rate)
    print(f"wrote {out} ({len(audio) / gan.sample_rate:.1f} s at {gan.sample_rate} Hz, "
          f"{', '.join(gan.instruments()[gan.instrument_index(x)] for x in insts)})")
    return 0
