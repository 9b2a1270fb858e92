"""CLI commands of the model families: ``train`` and ``generate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tunesmith.cli_common import add_renamed
from tunesmith.errors import OptionError


def add_commands(sub: argparse._SubParsersAction) -> None:
    from tunesmith.models.registry import FAMILIES, PRESETS, SEQUENCE_FAMILIES, bundled, bundled_for

    symbolic = [n for n, f in FAMILIES.items() if f.kind in ("tokens", "roll")]  # the rest: 'audio train'
    s = sub.add_parser("train", help="train a model on a corpus, dataset or folder of files")
    s.add_argument("--family", choices=symbolic,
                   help="model family: " + "; ".join(f"{n}: {FAMILIES[n].description}" for n in symbolic))
    s.add_argument("--from", dest="init_from", metavar="MODEL",
                   help="fine-tune: start from this bundled model or checkpoint (token models; its family, size "
                   "and tokens are kept)")
    s.add_argument("--data", required=True, help="bundled corpus name, prepared dataset, folder of files, or "
                   "liked:LISTENER (the pieces a listener likes in the store)")
    s.add_argument("--db-url", help="with --data liked:LISTENER: the store (default $TUNESMITH_DB_URL or SQLite "
                   "under $TUNESMITH_HOME)")
    s.add_argument("--out", required=True, help="run folder (checkpoints, curves, metrics)")
    s.add_argument("--size", default="small", choices=list(PRESETS), help="size preset")
    s.add_argument("--tokens", choices=["remi", "satb"], help="token models: remi (event tokens, any music; "
                   "default) or satb (four voices on a sixteenth grid, one token per voice per step: chorales)")
    s.add_argument("--styles", action="store_true", help="event tokens: condition on the data's style tags (its "
                   "collection and Essen region), so that 'generate --style' can ask for one")
    g = s.add_argument_group("model size overrides")
    g.add_argument("--layers", type=int, dest="n_layer")
    g.add_argument("--embd", type=int, dest="n_embd")
    g.add_argument("--hidden", type=int, dest="n_hidden", help="RNN hidden units")
    g.add_argument("--heads", type=int, dest="n_head", help="Transformer heads")
    g.add_argument("--block-size", type=int, dest="block_size", help="Transformer context length")
    g.add_argument("--dropout", type=float)
    t = s.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=None, help="most epochs (default 20; with --resume, the run's own)")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--seq-len", type=int, help="tokens per training window (default: 512, or the block size if smaller)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 2e-3 RNN, 1e-3 Transformer)")
    t.add_argument("--train-minutes", type=float, help="training time budget: stop (with a checkpoint) after "
                   "this much training time")
    t.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    t.add_argument("--patience", type=int, default=4, help="epochs without improvement before early stopping")
    t.add_argument("--checkpoint-every", type=int, default=200, help="steps between 'last' checkpoints")
    t.add_argument("--augment-transpose", action="store_true", help="random transposition (12 keys; always on "
                   "for cnn and gan)")
    t.add_argument("--unlikelihood", type=float, default=0.0, metavar="WEIGHT",
                   help="satb tokens: weight of an unlikelihood term that teaches the model to avoid parallel "
                        "fifths and octaves (0 = off; BENCHMARKS.md measured 5 and 20)")
    t.add_argument("--steps-per-epoch", type=int, default=100, help="cnn/gan: steps between validations")
    t.add_argument("--channels", type=int, help="cnn: convolution channels (default 48)")
    t.add_argument("--n-critic", type=int, default=5, help="gan: critic updates per generator update")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    t.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--quiet", action="store_true")
    add_renamed(s, "--model")
    add_renamed(s, "--max-minutes")
    s.set_defaults(func=cmd_train)

    b = sub.add_parser("bench", help="standard benchmarks")
    bsub = b.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    s = bsub.add_parser("nll", help="polyphonic benchmark: test NLL in nats per frame (JSB, Nottingham)")
    s.add_argument("--data", required=True, help="a .mat file with traindata/validdata/testdata (T×88 rolls)")
    s.add_argument("--family", choices=SEQUENCE_FAMILIES, help="model family (default lstm; with --resume, the run's)")
    s.add_argument("--size", default="small", choices=list(PRESETS))
    s.add_argument("--layers", type=int, dest="n_layer")
    s.add_argument("--embd", type=int, dest="n_embd")
    s.add_argument("--hidden", type=int, dest="n_hidden")
    s.add_argument("--heads", type=int, dest="n_head")
    s.add_argument("--dropout", type=float)
    s.add_argument("--train-minutes", type=float, default=10.0, help="training time budget")
    s.add_argument("--epochs", type=int, default=200)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--lr", type=float, default=2e-3)
    s.add_argument("--augment-transpose", action="store_true")
    s.add_argument("--checkpoint", help="evaluate this checkpoint only (no training): a run or checkpoint folder, "
                   "or the name of a shipped one (jsb-lstm, ...)")
    s.add_argument("--out", help="run folder (default: runs/bench-<data>-<model>)")
    s.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (model and training settings from the "
                        "run; --train-minutes and --epochs are totals, time before the interruption included)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true")
    add_renamed(s, "--model")
    s.set_defaults(func=cmd_bench_nll)

    s = sub.add_parser("generate", help="generate music with a bundled model or a checkpoint",
                       description="Controls a model's family cannot honour are refused (never dropped); "
                       "left out, each takes the model's own default.")
    s.add_argument("--model", help=f"bundled model name ({', '.join(bundled('tokens') + bundled('roll'))}) or a run / "
                   "checkpoint folder; with --for, a comma list (default bach-chorales,folk)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--for", dest="for_listener", metavar="LISTENER",
                   help="personalised: generate --candidates pieces across models, keys and temperatures and keep "
                   "the --num that this listener's taste model (the recommender) scores highest")
    s.add_argument("--candidates", type=int, default=12, help="with --for: how many candidates (default 12)")
    s.add_argument("--db-url", help="with --for: the store (default $TUNESMITH_DB_URL or SQLite under $TUNESMITH_HOME)")
    s.add_argument("--primer", help="token models: a MIDI/MusicXML/ABC/kern file whose notes open the piece")
    s.add_argument("--bars", type=int, help="bars of new music (1–256; default 8)")
    s.add_argument("--seconds", type=float, help="instead of --bars: about this many seconds, as bars of 4/4 at "
                   "--tempo (default 100 quarter notes per minute)")
    s.add_argument("--temperature", type=float, help="token models and cnn: divides the logits (default 1.0)")
    s.add_argument("--top-k", type=int, help="token models: keep the k likeliest tokens (default 0: all)")
    s.add_argument("--top-p", type=float, help="token models: nucleus sampling mass in (0, 1] (default: the model's own, 0.95 unless its card says otherwise)")
    s.add_argument("--key", help="e.g. 'G major', 'F# minor', 'Am'")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--num", type=int, default=1, help="how many pieces (1–100)")
    s.add_argument("--no-cache", action="store_true", help="token models: recompute the full context each step "
                   "(slow; for checks)")
    s.add_argument("--formats", default="mid,wav,musicxml,png", help="comma list of mid, wav, musicxml, png, flac, ogg, mp3")
    s.add_argument("--iterations", type=int, help="cnn: Gibbs sampling rounds (default 96)")
    s.add_argument("--latent-scale", type=float, help="gan: multiplies the latent noise (default 1.0; below 1: "
                   "closer to the average phrase)")
    s.add_argument("--threshold", type=float, help="gan: least probability at which a voice sounds (default 0.2)")
    s.add_argument("--tempo", type=float, help="quarter notes per minute of the written piece (default: the model's)")
    s.add_argument("--instruments", help="General MIDI names or programs per part, e.g. piano, or "
                   "'violin,viola,cello,contrabass', or 40,41,42,43 (one name: every part)")
    s.add_argument("--style", help="models trained with --styles (the bundled folk model): a collection "
                   "(essen, oneills-1850, ryans-mammoth) or an Essen region (e.g. Schlesien)")
    s.add_argument("--rules", choices=["strict", "soft", "off"], help="chorale models (SATB tokens, Coconet): rules "
                   "of four-part writing while sampling — strict masks what breaks them (default), soft only "
                   "penalises, off")
    s.add_argument("--device", default="cpu", help="token models: cpu, cuda or cuda:N")
    s.add_argument("--force", action="store_true", help="replace pieces of the same name in --out")
    s.set_defaults(func=cmd_generate)

    for name, hlp in (("harmonize", "harmonize a melody as a four-voice chorale (Coconet or SATB tokens)"),
                      ("infill", "regenerate chosen bars and voices of a four-voice piece (Coconet)")):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("file", help="a MIDI, MusicXML or ABC file" + (" (see --melody-track)"
                                                                        if name == "harmonize" else ""))
        if name == "harmonize":
            s.add_argument("--melody-track", metavar="NAME|INDEX", help="the track that holds the melody, by name "
                           "or number (default: a track named like a melody, else the most melodic line)")
            s.add_argument("--particles", type=int, help="SATB token models: chains of a particle filter that "
                           "weighs each by how likely its lower voices make the melody (default 1; each costs "
                           "about one harmonization)")
        if name == "infill":
            s.add_argument("--bars", required=True, help="bars to regenerate, counted from 1: e.g. 3-4 or 5")
            s.add_argument("--voices", help="comma list of soprano, alto, tenor, bass (default: all)")
        s.add_argument("--model", default="chorale-cnn", help=f"bundled {', '.join(bundled_for(name))}, or a run / "
                       "checkpoint folder of a Coconet" + (" or SATB-token" if name == "harmonize" else "") + " model")
        s.add_argument("--out", required=True, help="output folder")
        s.add_argument("--temperature", type=float, default=1.0)
        s.add_argument("--iterations", type=int, help="Coconet: Gibbs sampling rounds (default 96)")
        s.add_argument("--rules", choices=["strict", "soft", "off"], help="rules of four-part writing for the "
                       "voices written (default strict; see README)")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--piece", type=int, default=1, help="which tune of a multi-tune file (1-based)")
        s.add_argument("--formats", default="mid,wav,musicxml,png", help="comma list of mid, wav, musicxml, png, flac, ogg, mp3")
        s.add_argument("--tempo", type=float, help="quarter notes per minute of the written piece (default: the model's)")
        s.add_argument("--instruments", help="General MIDI names or programs per part, e.g. piano, or "
                   "'violin,viola,cello,contrabass', or 40,41,42,43 (one name: every part)")
        s.add_argument("--force", action="store_true", help="replace a piece of the same name in --out")
        s.set_defaults(func=cmd_harmonize_infill)


def cmd_train_rolls(a: argparse.Namespace) -> int:
    from tunesmith.music.dataset import open_dataset
    from tunesmith.train.roll_trainer import RollTrainConfig, train_rolls, voice_corpus

    tc = RollTrainConfig(epochs=a.epochs, steps_per_epoch=a.steps_per_epoch, batch_size=a.batch_size,
                         lr=a.lr if a.lr is not None else (1e-3 if a.family == "cnn" else 1e-4),
                         max_minutes=a.train_minutes, max_steps=a.max_steps, checkpoint_every=a.checkpoint_every,
                         n_critic=a.n_critic, seed=a.seed, device=a.device)
    tc.check()
    if a.channels is not None and a.channels < 4:
        raise OptionError("--channels", f"must be at least 4, got {a.channels}")
    if a.n_layer is not None and a.n_layer < 2:
        raise OptionError("--layers", f"must be at least 2, got {a.n_layer}")
    cfg = {}
    if a.family == "cnn":
        cfg = {k: v for k, v in (("channels", a.channels), ("n_layer", a.n_layer)) if v is not None}
    ds = open_dataset(a.data, progress=not a.quiet)
    data = voice_corpus(ds, progress=not a.quiet)
    summary = train_rolls(a.out, a.family, cfg, data, tc, resume=a.resume, progress=not a.quiet,
                          extra={"dataset": {"name": ds.name, **ds.hashes()}})
    score = next((k[5:] for k in summary if k.startswith("best_valid_")), None)
    best = f"; best {score} {summary['best_valid']:.4f}" if score and summary["best_valid"] is not None else ""
    print(f"trained {a.family} ({summary['n_params']:,} parameters) for {summary['steps']} steps in "
          f"{summary['seconds']:.0f} s ({summary['stop_reason']}){best}; checkpoints in {a.out}/best and {a.out}/last")
    return 0


def _fine_tune_base(a: argparse.Namespace) -> tuple[str, dict, object]:
    """For --from: (family, saved config, checkpoint folder); size options are refused."""
    from tunesmith.models.checkpoint import read_config
    from tunesmith.models.registry import SEQUENCE_FAMILIES, resolve

    path = resolve(a.init_from)
    saved = read_config(path)
    fam = saved.get("family")
    if fam not in SEQUENCE_FAMILIES:
        raise OptionError("--from", f"'{a.init_from}' is a {fam} model; --from fine-tunes token models "
                          f"({', '.join(SEQUENCE_FAMILIES)})")
    if a.family and a.family != fam:
        raise OptionError("--family", f"'{a.init_from}' is a {fam} model, not {a.family}")
    rep = (saved.get("representation") or {}).get("representation", "remi")
    if a.tokens and a.tokens != rep:
        raise OptionError("--tokens", f"'{a.init_from}' reads {rep} tokens")
    for opt, v in (("--layers", a.n_layer), ("--embd", a.n_embd), ("--hidden", a.n_hidden), ("--heads", a.n_head),
                   ("--block-size", a.block_size), ("--dropout", a.dropout)):
        if v is not None:
            raise OptionError(opt, "the model's size comes from --from")
    a.family, a.tokens = fam, rep
    return fam, saved, path


def _training_data(a: argparse.Namespace) -> str:
    """--data as the dataset layer reads it: liked:LISTENER becomes a folder of the listener's
    liked pieces."""
    from tunesmith.recommend.liked import PREFIX, export_liked

    if not a.data.startswith(PREFIX):
        if a.db_url:
            raise OptionError("--db-url", "only applies with --data liked:LISTENER")
        return a.data
    who = a.data[len(PREFIX):]
    if not who:
        raise OptionError("--data", "liked: needs a listener name, e.g. liked:ann")
    folder, n = export_liked(who, url=a.db_url)
    if not a.quiet:
        print(f"training data: {n} pieces {who} likes ({folder})")
    return str(folder)


def best_line(summary: dict) -> str:
    """How best/ was chosen, for the last line of a run: its valid NLL, or the objective an
    unlikelihood run trains (NLL + weight × unlikelihood)."""
    if "best_valid_objective" in summary:
        return f"best valid objective {summary['best_valid_objective']:.4f} (NLL + unlikelihood)"
    if "best_valid_nll" in summary:
        return f"best valid NLL {summary['best_valid_nll']:.4f} nats/token"
    # a resumed run that ended before validating again names no score: the best one it kept
    best = summary.get("best_valid")
    return "no validation score" if best is None else f"best validation score {best:.4f}"


def _resume_budget(a: argparse.Namespace) -> None:
    """The budget options a user left out: with --resume, the run's own (a resumed run keeps
    its --epochs, --train-minutes and --max-steps unless they are given again); else the
    defaults."""
    saved: dict = {}
    if a.resume:
        from tunesmith.models.checkpoint import read_config

        last = Path(a.out) / "last"
        if (last / "config.json").is_file():
            saved = read_config(last).get("train", {})
        if a.train_minutes is None:
            a.train_minutes = saved.get("max_minutes")
        if a.max_steps is None:
            a.max_steps = saved.get("max_steps")
    if a.epochs is None:
        a.epochs = saved.get("epochs", 20)


def cmd_train(a: argparse.Namespace) -> int:
    import torch

    from tunesmith.train.loop import check_device

    check_device(a.device)  # before any work
    _resume_budget(a)
    base = _fine_tune_base(a) if a.init_from else None
    if a.family is None:
        raise OptionError("--family", "give a model family (or --from MODEL to fine-tune one)")
    a.data = _training_data(a)
    if a.family in ("cnn", "gan"):
        if a.styles:
            raise OptionError("--styles", f"a {a.family} model has no style tokens (event-token models do)")
        if a.tokens is not None:
            raise OptionError("--tokens", f"a {a.family} model reads four-voice piano rolls, not tokens")
        if a.unlikelihood:
            raise OptionError("--unlikelihood", f"a {a.family} model is not trained on SATB tokens")
        if a.threads is not None:
            if a.threads < 1:
                raise OptionError("--threads", f"must be at least 1, got {a.threads}")
            torch.set_num_threads(a.threads)
        return cmd_train_rolls(a)

    from tunesmith.models.registry import make_config
    from tunesmith.music.dataset import open_dataset
    from tunesmith.represent import satb
    from tunesmith.represent.tokens import EventTokenizer
    from tunesmith.train.data import corpus_programs, event_corpus, satb_corpus, style_vocabulary
    from tunesmith.train.trainer import TrainConfig, setup_distributed, train

    if a.threads is not None:
        if a.threads < 1:
            raise OptionError("--threads", f"must be at least 1, got {a.threads}")
        torch.set_num_threads(a.threads)
    if a.dropout is not None and not 0 <= a.dropout < 1:
        raise OptionError("--dropout", f"must be in [0, 1), got {a.dropout}")
    for opt, v in (("--layers", a.n_layer), ("--embd", a.n_embd), ("--hidden", a.n_hidden),
                   ("--heads", a.n_head), ("--block-size", a.block_size)):
        if v is not None and v < 1:
            raise OptionError(opt, f"must be at least 1, got {v}")
    lr = a.lr if a.lr is not None else (1e-3 if a.family == "transformer" else 2e-3)
    tc = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, seq_len=a.seq_len or 512, lr=lr,
                     max_minutes=a.train_minutes, max_steps=a.max_steps, patience=a.patience,
                     checkpoint_every=a.checkpoint_every, augment_transpose=a.augment_transpose,
                     unlikelihood=a.unlikelihood, seed=a.seed, device=a.device)
    tc.check()
    if tc.unlikelihood and a.tokens != "satb":
        raise OptionError("--unlikelihood", "the parallels it teaches are read from SATB tokens (--tokens satb)")
    rank, _, _ = setup_distributed(a.device)
    ds = open_dataset(a.data, progress=not a.quiet and rank == 0)
    if a.tokens == "satb":
        if a.styles:
            raise OptionError("--styles", "style tokens go with event tokens (--tokens remi)")
        corpus = satb_corpus(ds, progress=not a.quiet and rank == 0)
        extra = {"tokenizer": satb.describe()}
    else:
        tok = EventTokenizer.from_dict(base[1]["tokenizer"]) if base else EventTokenizer()
        styles = base[1].get("styles") if base else (style_vocabulary(ds) if a.styles else None)
        if a.styles and base and not styles:
            raise OptionError("--styles", f"'{a.init_from}' was trained without style tokens")
        corpus = event_corpus(ds, tok, progress=not a.quiet and rank == 0, styles=styles)
        extra = {"tokenizer": tok.to_dict(), "programs": corpus_programs(tok, corpus)}
        if styles:
            extra["styles"] = styles
    if base:
        from tunesmith.models.registry import config_from_dict

        cfg = config_from_dict(a.family, base[1]["model"])
        if cfg.vocab_size != corpus.vocab_size:
            raise OptionError("--from", f"'{a.init_from}' has {cfg.vocab_size} tokens, this data {corpus.vocab_size}")
        extra["fine_tuned_from"] = str(base[2])
    else:
        cfg = make_config(a.family, corpus.vocab_size, a.size, n_layer=a.n_layer, n_embd=a.n_embd,
                          n_hidden=a.n_hidden, n_head=a.n_head, block_size=a.block_size, dropout=a.dropout)
    if a.family == "transformer" and a.seq_len is None:
        tc.seq_len = min(tc.seq_len, cfg.block_size)
    if a.family == "transformer" and tc.seq_len > cfg.block_size:
        raise OptionError("--seq-len", f"{tc.seq_len} exceeds the model's --block-size {cfg.block_size}")
    summary = train(a.out, a.family, cfg, corpus, tc, resume=a.resume, progress=not a.quiet,
                    extra={**extra, "dataset": {"name": ds.name, **ds.hashes()}},
                    init_from=base[2] if base and not a.resume else None)
    if rank == 0:
        print(f"trained {a.family} ({summary['n_params']:,} parameters) for {summary['steps']} steps "
              f"in {summary['seconds']:.0f} s ({summary['stop_reason']}); {best_line(summary)}; "
              f"checkpoints in {a.out}/best and {a.out}/last")
        print(f"next: tunesmith generate --model {a.out} --bars 8 --out out/{Path(a.out).name}")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from tunesmith.generate.api import generate_to_files

    if a.seconds is not None and a.bars is not None:
        raise OptionError("--seconds", "give --bars or --seconds, not both")
    if a.bars is None and a.seconds is None:
        a.bars = 8

    if a.for_listener is not None:
        return _generate_for(a)
    if not a.model:
        raise OptionError("--model", "give a model (or --for LISTENER for personalised pieces)")
    if a.db_url or a.candidates != 12:
        raise OptionError("--candidates" if a.candidates != 12 else "--db-url", "only applies with --for")
    if a.seconds is not None:
        # length in time: bars of 4/4 at --tempo (default 100), and the piece is written at that tempo
        if not 1 <= a.seconds <= 1800:
            raise OptionError("--seconds", f"must be 1–1800, got {a.seconds:g}")
        a.tempo = a.tempo or 100.0
        a.bars = max(1, round(a.seconds * a.tempo / 60 / 4))

    results = generate_to_files(
        a.model, a.out, primer=a.primer, bars=a.bars, temperature=a.temperature, top_k=a.top_k,
        top_p=a.top_p, key=a.key, seed=a.seed, num=a.num, use_cache=False if a.no_cache else None,
        formats=a.formats, device=a.device, iterations=a.iterations, latent_scale=a.latent_scale,
        threshold=a.threshold, rules=a.rules, style=a.style, force=a.force, tempo=a.tempo,
        instruments=a.instruments, progress=sys.stderr.isatty())
    for r in results:
        repairs = f", {r['repairs']} repairs" if r["repairs"] else ""
        print(f"wrote {', '.join(r['files'])}  [key {r['key']}, {r['bars']} bars, {r['notes']} notes{repairs}]")
        for said in ("primer", "stopped_early", "primer_melody"):
            if (r.get("rules") or {}).get(said):
                print(f"tunesmith: {'note' if said == 'primer_melody' else 'warning'}: {r['rules'][said]}",
                      file=sys.stderr)
    if results:
        first = results[0]["files"][0]
        ref = results[0]["settings"].get("trained_on")  # evaluate needs the real music to compare with
        evaluate = f"tunesmith evaluate {a.out} --reference {ref}  ·  " if ref else ""
        print(f"next: tunesmith play {first}  ·  {evaluate}tunesmith analyze {first}")
    return 0


def _generate_for(a: argparse.Namespace) -> int:
    from tunesmith.recommend.personal import generate_for

    fixed = {"--primer": a.primer, "--temperature": a.temperature, "--top-k": a.top_k, "--top-p": a.top_p,
             "--key": a.key, "--iterations": a.iterations, "--latent-scale": a.latent_scale,
             "--threshold": a.threshold, "--rules": a.rules, "--style": a.style, "--seconds": a.seconds}
    for opt, v in fixed.items():
        if v is not None:
            raise OptionError(opt, "is chosen per candidate with --for (keys and temperatures vary)")
    if a.device != "cpu" or a.no_cache:
        raise OptionError("--device" if a.device != "cpu" else "--no-cache", "does not apply with --for")
    models = [m.strip() for m in a.model.split(",")] if a.model else None
    if models is not None and not all(models):
        raise OptionError("--model", f"'{a.model}' has an empty name")
    res = generate_for(a.for_listener, a.out, models=models, candidates=a.candidates, num=a.num, bars=a.bars,
                       seed=a.seed, formats=a.formats, url=a.db_url, force=a.force)
    for r in res:
        print(f"wrote {', '.join(r['files'])}  [{r['settings']['model']}, key {r['key']}, taste score "
              f"{r['taste_score']:+.2f}, best {r['rank_among_candidates']} of {r['candidates']} for {a.for_listener}]")
    return 0


def cmd_harmonize_infill(a: argparse.Namespace) -> int:
    from tunesmith.generate.rework import rework_to_files

    info = rework_to_files(a.command, a.model, a.file, a.out, piece=a.piece, temperature=a.temperature,
                           iterations=a.iterations, seed=a.seed, rules=getattr(a, "rules", None),
                           bars=getattr(a, "bars", None), voices=getattr(a, "voices", None), formats=a.formats,
                           force=a.force, melody_track=getattr(a, "melody_track", None), tempo=a.tempo,
                           instruments=a.instruments, progress=sys.stderr.isatty(),
                           particles=getattr(a, "particles", None))
    if (info.get("rules") or {}).get("input"):
        print(f"tunesmith: warning: {info['rules']['input']}", file=sys.stderr)
    if (info.get("rules") or {}).get("melody"):
        print(info["rules"]["melody"])
    print(f"wrote {', '.join(info['files'])}  [key {info['key']}, {info['bars']} bars, {info['notes']} notes]")
    return 0


def cmd_bench_nll(a: argparse.Namespace) -> int:
    from tunesmith.evaluate.polyphonic import bench_nll, published_results

    if a.train_minutes <= 0:
        raise OptionError("--train-minutes", f"must be positive, got {a.train_minutes}")
    result, out = bench_nll(a.data, checkpoint=a.checkpoint, family=a.family, size=a.size,
                            overrides=dict(n_layer=a.n_layer, n_embd=a.n_embd, n_hidden=a.n_hidden,
                                           n_head=a.n_head, dropout=a.dropout),
                            train_minutes=a.train_minutes, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                            augment_transpose=a.augment_transpose, out=a.out, resume=a.resume, seed=a.seed,
                            progress=not a.quiet)
    print(f"{Path(a.data).stem}: {result['family']} test NLL {result['test_nll_per_frame']:.3f} nats/frame over "
          f"{result['test_frames']:,} frames (valid {result['valid_nll_per_frame']:.3f}); result in "
          f"{out / 'bench_nll.json'}")
    published = published_results(a.data)
    w = max((len(k) for k in published), default=0)
    for k, v in sorted(published.items(), key=lambda kv: -kv[1]):
        print(f"  {k:{w}} {v:6.2f}{'  <- beaten' if result['test_nll_per_frame'] < v else ''}")
    return 0
