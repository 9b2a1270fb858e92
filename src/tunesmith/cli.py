"""The one entry point: ``tunesmith <command>``.

A thin layer over the Python API: it parses options, checks their ranges, and
turns every :class:`~tunesmith.errors.TunesmithError` into one line on stderr
with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tunesmith.cli_common import Parser, add_limits, limits_from
from tunesmith.errors import OptionError, ParameterError, TunesmithError
from tunesmith.fileio import dumps

# --------------------------------------------------------------------------- commands


def cmd_info(a: argparse.Namespace) -> int:
    from tunesmith.music.io import read_pieces
    from tunesmith.music.keys import key_reading
    from tunesmith.music.meter import estimated_upbeat

    res = read_pieces(a.file, limits=limits_from(a))
    shown = res.scores if a.all else res.scores[:1]
    for i, s in enumerate(shown):
        info = {
            "file": str(a.file),
            "piece": i + 1 if len(res.scores) > 1 else None,
            "pieces_in_file": len(res.scores),
            "title": s.meta.title,
            "composer": s.meta.composer,
            "tracks": [{"name": t.name, "program": int(t.program), "drum": bool(t.is_drum),
                        "notes": len(t.notes)} for t in s.music.tracks],
            "notes": s.n_notes,
            "duration_seconds": round(s.duration_seconds(), 2),
            "key": s.meta.key or (f"{key_reading(s)} (estimated)" if s.n_notes else None),
            "time_signature": s.time_signature(),
            "tempo_qpm": round(s.tempo(), 2) if s.tempo() else None,
            "upbeat_estimated_quarters": estimated_upbeat(s),
            "tags": s.meta.tags,
        }
        if a.json:
            print(dumps(info))
            continue
        head = f"{info['file']}" + (f"  (piece {i + 1} of {len(res.scores)})" if len(res.scores) > 1 else "")
        print(head)
        for k in ("title", "composer", "notes", "duration_seconds", "key", "time_signature", "tempo_qpm"):
            if info[k] not in (None, ""):
                print(f"  {k.replace('_', ' '):16} {info[k]}")
        if info["upbeat_estimated_quarters"]:
            print(f"  {'upbeat':16} {info['upbeat_estimated_quarters']:g} quarter note(s), estimated (a MIDI file writes "
                  "an upbeat at time 0; the music now begins in bar 1's last beats)")
        print(f"  {'tracks':16} {len(info['tracks'])}")
        for t in info["tracks"]:
            print(f"    - {t['name'] or '(unnamed)'}: program {t['program']}{' (drums)' if t['drum'] else ''}, {t['notes']} notes")
        if info["tags"]:
            print(f"  {'tags':16} {', '.join(info['tags'])}")
        if not s.n_notes:
            print("  (no notes: no key to estimate)")
    if len(res.scores) > 1 and not a.all and not a.json:
        print(f"  ({len(res.scores)} pieces in this file; --all shows each)")
    return 0


def cmd_render(a: argparse.Namespace) -> int:
    import time

    from tunesmith.music.io import load_score
    from tunesmith.music.render import render_audio

    if not 8000 <= a.sample_rate <= 192000:
        raise OptionError("--sample-rate", f"must be between 8000 and 192000, got {a.sample_rate}")
    from tunesmith.music.render import AUDIO_FORMATS

    out = Path(a.out) if a.out else Path(a.file).with_suffix(".wav")
    if out.suffix.lower() not in AUDIO_FORMATS:
        raise OptionError("--out", f"must end in {', '.join(AUDIO_FORMATS)}, got '{out}'")
    from tunesmith.cli_common import check_output_name

    check_output_name(out)
    from tunesmith.music.arrange import arranged, check_tempo, parse_instruments
    from tunesmith.music.meter import as_written

    check_tempo(a.tempo)
    programs = parse_instruments(a.instruments) if a.instruments else None
    # a MIDI file's upbeat the reader placed in bar 1 sounds from the file's start, as the file has it
    score = arranged(as_written(load_score(a.file, index=a.piece - 1, limits=limits_from(a))), tempo=a.tempo,
                     instruments=programs)
    t0 = time.perf_counter()
    render_audio(score, [out], sample_rate=a.sample_rate, soundfont=a.soundfont)
    dt = time.perf_counter() - t0
    dur = score.duration_seconds()
    print(f"wrote {out} ({dur:.1f} s of audio in {dt:.2f} s, {dur / max(dt, 1e-9):.0f}x real time)")
    return 0


PLAYERS = (("pw-play", []), ("paplay", []), ("aplay", ["-q"]), ("afplay", []), ("ffplay", ["-nodisp", "-autoexit",
                                                                                             "-loglevel", "quiet"]))


def cmd_play(a: argparse.Namespace) -> int:
    """Render to a WAV under $TUNESMITH_HOME/play and hand it to the first audio player found;
    where there is none (or no sound device), say where the WAV is."""
    import shutil
    import subprocess

    from tunesmith.fileio import tunesmith_home
    from tunesmith.music.arrange import arranged, check_tempo, parse_instruments
    from tunesmith.music.io import load_score
    from tunesmith.music.meter import as_written
    from tunesmith.music.render import render_audio

    check_tempo(a.tempo)
    programs = parse_instruments(a.instruments) if a.instruments else None
    score = arranged(as_written(load_score(a.file, index=a.piece - 1, limits=limits_from(a))), tempo=a.tempo,
                     instruments=programs)
    wav = tunesmith_home() / "play" / (Path(a.file).name + ".wav")
    render_audio(score, [wav])
    for exe, args in PLAYERS:
        path = shutil.which(exe)
        if path:
            print(f"playing {a.file} ({score.duration_seconds():.0f} s) with {exe}; Ctrl-C stops")
            r = subprocess.run([path, *args, str(wav)], stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return 0
            break
    print(f"no audio player or sound device here; the audio is in {wav}")
    return 0


def cmd_data_list(a: argparse.Namespace) -> int:
    from tunesmith.music.corpora import CORPORA, corpus_files, count_pieces

    print(f"{'corpus':15} {'files':>6} {'pieces':>7}  description")
    for name, c in CORPORA.items():
        files = corpus_files(name)
        print(f"{name:15} {len(files):>6} {count_pieces(files):>7}  {c.description}")
    return 0


def cmd_data_prepare(a: argparse.Namespace) -> int:
    from tunesmith.music.dataset import prepare

    if a.workers is not None and a.workers < 1:
        raise OptionError("--workers", f"must be at least 1, got {a.workers}")
    r = prepare(a.source, a.out, workers=a.workers, limits=limits_from(a), progress=not a.quiet)
    print(f"dataset {r.path}: {r.n_pieces} pieces from {r.n_files} files "
          f"({r.n_parsed} parsed, {r.n_cached} cached) in {r.seconds:.1f} s; "
          f"{r.n_skipped} skipped (see {r.path / 'skipped.json'}), {r.n_duplicates} duplicates dropped")
    empty = [k for k in ("valid", "test") if r.splits and not r.splits.get(k)]
    if empty:
        print(f"tunesmith: warning: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty "
              f"({r.n_pieces} pieces; each piece goes to valid or test with 10% chance, by its content hash): "
              "training cannot choose a checkpoint on held-out pieces and 'evaluate --model' has no test pieces; "
              "add pieces", file=sys.stderr)
    print(f"next: tunesmith train --family transformer --data {r.path} --out runs/NAME")
    return 0


def cmd_data_info(a: argparse.Namespace) -> int:
    from tunesmith.music.dataset import open_dataset

    s = open_dataset(a.dataset, progress=not a.json).summary()
    if a.json:
        print(dumps(s))
        return 0
    print(f"dataset {s['name']}: {s['pieces']} pieces "
          f"(train {s['splits']['train']}, valid {s['splits']['valid']}, test {s['splits']['test']})")
    print(f"  notes           {s['notes']:,}")
    print(f"  duration        {s['hours']} h (median piece {s['median_seconds']} s)")
    if s["pitch_range"]:
        print(f"  pitch range     {s['pitch_range'][0]}–{s['pitch_range'][1]} (MIDI)")
    print("  keys            " + ", ".join(f"{k} ({n})" for k, n in s["keys"]))
    print("  meters          " + ", ".join(f"{k} ({n})" for k, n in s["meters"]))
    print("  tracks          " + ", ".join(f"{k} tracks ({n})" for k, n in s["tracks"]))
    print(f"  skipped files   {s['skipped']}; duplicates dropped {s['duplicates']}")
    return 0


# --------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    from tunesmith import __version__

    p = Parser(prog="tunesmith", description="AI music: generate, evaluate, analyse.")
    p.add_argument("--version", action="version", version=f"tunesmith {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    s = sub.add_parser("info", help="describe a music file (tracks, notes, key, meter, tempo)")
    s.add_argument("file")
    s.add_argument("--all", action="store_true", help="every piece of a multi-tune file")
    s.add_argument("--json", action="store_true", help="one JSON object per piece")
    add_limits(s)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("render", help="render a music file to audio (WAV, FLAC, OGG or MP3) with FluidSynth")
    s.add_argument("file")
    s.add_argument("--out", help="audio path: .wav, .flac, .ogg or .mp3 (default: FILE with .wav)")
    s.add_argument("--soundfont", help="a .sf2 SoundFont (default: pretty_midi's TimGM6mb.sf2)")
    s.add_argument("--sample-rate", type=int, default=44100)
    s.add_argument("--piece", type=int, default=1, help="which tune of a multi-tune file (1-based)")
    s.add_argument("--tempo", type=float, help="quarter notes per minute (default: the file's)")
    s.add_argument("--instruments", help="General MIDI names or programs per part, e.g. piano or 'flute,cello'")
    add_limits(s)
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("play", help="play a music file (rendered with FluidSynth) on this machine's speakers")
    s.add_argument("file")
    s.add_argument("--piece", type=int, default=1, help="which tune of a multi-tune file (1-based)")
    s.add_argument("--tempo", type=float, help="quarter notes per minute (default: the file's)")
    s.add_argument("--instruments", help="General MIDI names or programs per part")
    add_limits(s)
    s.set_defaults(func=cmd_play)

    d = sub.add_parser("data", help="bundled corpora and prepared datasets")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    s = dsub.add_parser("list", help="the bundled corpora with piece counts")
    s.set_defaults(func=cmd_data_list)
    s = dsub.add_parser("prepare", help="parse a corpus or folder into a cached dataset")
    s.add_argument("source", help="a bundled corpus name or a folder of MIDI/MusicXML/ABC/kern files")
    s.add_argument("--out", help="dataset folder (default: $TUNESMITH_HOME/datasets/NAME)")
    s.add_argument("--workers", type=int, help="parallel processes (default: all cores)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    add_limits(s)
    s.set_defaults(func=cmd_data_prepare)
    s = dsub.add_parser("info", help="counts, durations, pitch range, keys and meters of a dataset")
    s.add_argument("dataset", help="a dataset folder, corpus name or folder of files")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_data_info)

    from tunesmith import cli_models

    cli_models.add_commands(sub)
    from tunesmith import cli_evaluate

    cli_evaluate.add_commands(sub)
    from tunesmith import cli_audio

    cli_audio.add_commands(sub)
    from tunesmith import cli_mir

    cli_mir.add_commands(sub)
    cli_mir.add_search_commands(sub)
    cli_mir.add_classify_command(sub)
    from tunesmith import cli_store

    cli_store.add_commands(sub)
    from tunesmith import cli_studio

    cli_studio.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        rc = int(args.func(args) or 0)
        dist = sys.modules.get("torch.distributed")  # a torchrun training: leave its process group cleanly
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        return rc
    except TunesmithError as e:
        print(f"tunesmith: error: {e.cli_message() if isinstance(e, ParameterError) else e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tunesmith: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        if e.filename is None:
            raise
        # the machine, not tunesmith: a full disk, a read-only or vanished folder, no permission
        print(f"tunesmith: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 1
