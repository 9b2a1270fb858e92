"""CLI: music information retrieval — ``analyze``, ``transcribe``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tunesmith.cli_common import add_limits, limits_from
from tunesmith.errors import BadInputError, OptionError, TunesmithError
from tunesmith.fileio import dumps
from tunesmith.music.audio import FRAME_THRESHOLD, ONSET_THRESHOLD


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "analyze", help="analyse a piece: key, meter, tempo, chords, cadences, melody (MIDI, MusicXML, ABC, "
        "kern or audio)",
        description="Key with confidence and candidates (and key regions over time; for a tune, its tonic read "
        "from where its line rests and its mode: dorian, mixolydian …), meter, tempo, bars, a "
        "chord per beat with its Roman numeral, cadences at phrase ends, the melody's range, contour and "
        "intervals, and the evaluation metrics. Audio (WAV/FLAC/OGG/MP3) also gets tempo and beats, key "
        "from chroma, onsets, loudness and a pitch track, and is transcribed to notes for the rest.")
    s.add_argument("file")
    s.add_argument("--piece", type=int, default=1, help="which tune of a multi-tune file (1-based)")
    s.add_argument("--json", action="store_true", help="everything as one JSON object")
    s.add_argument("--png", metavar="FOLDER", help="write pictures there: chord chart and key regions over the "
                   "piano roll; for audio also the chromagram with beats")
    s.add_argument("--chords", type=int, default=16, metavar="N",
                   help="how many chords to list on the terminal (default 16; --json has all)")
    s.add_argument("--meter", metavar="TIME_SIGNATURE",
                   help="a recording's meter, if you know it (2/4, 3/4, 4/4, 6/8, 9/8, 12/8): only where its bars "
                   "begin is estimated (default: estimated too; a score carries its own)")
    add_limits(s)
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("transcribe", help="transcribe a recording to MIDI or sheet music (basic-pitch)",
                       description="Audio to notes with Spotify's basic-pitch (its ONNX weights ship in its "
                       "package). The tempo, the meter and where the bars begin are estimated from the notes, "
                       "so that bar 1 starts where the music's first bar does (a pickup before it). The MIDI can "
                       "then be analysed, searched with, continued (generate --primer) or harmonized.")
    s.add_argument("audio")
    s.add_argument("--out", help="MIDI path, or a .musicxml path for sheet music (default: AUDIO with .mid)")
    s.add_argument("--force", action="store_true", help="replace an existing --out file")
    s.add_argument("--onset-threshold", type=float, default=ONSET_THRESHOLD,
                   help="how sure basic-pitch must be that a note starts (0–1; basic-pitch's own default is 0.5)")
    s.add_argument("--frame-threshold", type=float, default=FRAME_THRESHOLD,
                   help="how sure it must be that a note sounds on (0–1; basic-pitch's own default is 0.3)")
    s.add_argument("--meter", metavar="TIME_SIGNATURE",
                   help="the recording's meter, if you know it (2/4, 3/4, 4/4, 6/8, 9/8, 12/8): only where its bars "
                   "begin is estimated (default: the meter is estimated too)")
    s.add_argument("--raw-onsets", action="store_true",
                   help="keep basic-pitch's onset times instead of moving each to where its attack began "
                   "(the onset refiner, trained on SoundFont renders; default: refined)")
    add_limits(s)
    s.set_defaults(func=cmd_transcribe)


def _spelt_mode(key: str) -> str:
    """A stated key as a musician reads it: ABC's "E dor" is E dorian."""
    from tunesmith.music.keys import mode_named

    tonic, _, mode = key.partition(" ")
    named = mode_named(mode) if mode else None
    return f"{tonic} {named}" if named and named not in ("ionian", "aeolian") else key


def _summary(d: dict, n_chords: int) -> list[str]:
    from tunesmith.music.keys import key_name

    k = d["key"]
    cands = ", ".join(f"{c['key']} {c['score']:.2f}" for c in k["candidates"][1:])
    of = (f" — tune {d['piece']} of {d['pieces_in_file']}" + (f": {d['title']}" if d.get("title") else "")
          + (f" (--piece {d['piece'] + 1} for the next)" if d["piece"] < d["pieces_in_file"] else "")
          if d.get("pieces_in_file", 1) > 1 else "")
    lines = [f"{d['file']}{of}" + (" (transcribed from audio)" if d.get("transcribed") else ""),
             f"  key          {k['modal'] + ' (chords read in ' + k['key'] + '; ' if k.get('modal') else k['key'] + ' ('}"
             f"confidence {k['confidence']:.2f}; score {k['candidates'][0]['score']:.2f}, next: {cands})"
             + (f"; its signature is {key_name((7 * k['signature']) % 12, 'major')}'s" if k.get("modal")
                and k.get("signature") is not None
                else f"; its signature reads {k['notated']}" if k.get("notated") and k["notated"] != k["key"] else "")
             + (f"; the file states {_spelt_mode(k['stated'])}" if k["stated"] else "")]
    if len(d["key_regions"]) > 1:
        lines.append("  key regions  " + ", ".join(f"bars {r['start_bar']}–{r['end_bar']} {r['key']}"
                                                   for r in d["key_regions"]))
    assumed = ""
    if d.get("transcribed"):
        m = d.get("meter_estimated")
        assumed = (f" ({'given' if m['given'] else 'estimated from the recording'}, confidence {m['confidence']:.2f}; "
                   f"bar 1's line at {m['first_bar_line_seconds'] + 0.0:.2f} s)" if m
                   else " (assumed: too few notes to estimate it)")
    elif d.get("upbeat_estimated_quarters"):
        assumed = (f" (an upbeat of {d['upbeat_estimated_quarters']:g} quarter note(s) read: MIDI writes it at "
                   "time 0, and bar 1 is now the bar it begins in)")
    lines.append(f"  meter        {d['meter']}{assumed}, {d['bars']} bar{'s' if d['bars'] != 1 else ''}" + (f", {d['tempo_qpm']:g} qpm" if d["tempo_qpm"] else ""))
    lines.append(f"  texture      {d['texture']}")
    ch = d["chords"]
    if ch:
        per = "bar (implied by the melody)" if d["texture"] == "melody" else "beat"
        shown = " ".join(f"{c['chord']}({c['roman']})" for c in ch[:n_chords])
        lines.append(f"  chords/{per.split()[0]:5} {shown}" + (" …" if len(ch) > n_chords else ""))
    if d["cadences"]:
        home = d["key"]["key"]
        lines.append("  cadences     " + "; ".join(
            f"bar {c['bar']} {c['type']}" + (f" in {c['key']}" if c.get("key", home) != home else "") + f" ({c['chords']})"
            for c in d["cadences"]))
    m = d["melody"]
    if m:
        from tunesmith.music.keys import PITCH_CLASS_NAMES

        def nm(p: int) -> str:
            return f"{PITCH_CLASS_NAMES[p % 12]}{p // 12 - 1}"

        low, high = m.get("lowest_name") or nm(m["lowest"]), m.get("highest_name") or nm(m["highest"])
        lines.append(f"  melody       {m['notes']} notes, {low}–{high} ({m['range']} semitones), "
                     f"steps {m['steps_share']:.0%}, up/down/repeat {m['contour']['up']:.0%}/{m['contour']['down']:.0%}/"
                     f"{m['contour']['repeat']:.0%}")
    elif d.get("audio") and d["texture"] != "melody":
        lines.append("  melody       not read: several voices were heard, and which of them is the tune a "
                     "transcription cannot tell (record the tune alone)")
    mt = d["metrics"]
    keys = ("pitch_class_entropy", "scale_consistency", "polyphony", "groove_consistency", "empty_beat_rate")
    lines.append("  metrics      " + ", ".join(f"{k} {mt[k] + 0.0:.3g}" for k in keys if mt.get(k) is not None))  # no -0
    a = d.get("audio")
    if a:
        lines.append(f"  audio        {a['seconds']:.1f} s, tempo {a['tempo_bpm']:.1f} bpm, {len(a['beats'])} beats, "
                     f"{len(a['onsets'])} onsets, key from chroma {a['key']}, loudness {a['loudness_dbfs']['mean']:.1f} dBFS, "
                     f"tuning {a['tuning_cents']:+.0f} cents from A440")
        if "pitch_track" in a:
            voiced = [f for f in a["pitch_track"]["f0_hz"] if f]
            lines.append(f"  pitch track  {len(voiced)} voiced frames of {len(a['pitch_track']['f0_hz'])}")
    return lines


def cmd_analyze(a: argparse.Namespace) -> int:
    from tunesmith.mir.api import analyze

    if a.piece < 1:
        raise OptionError("--piece", f"must be at least 1, got {a.piece}")
    if a.chords < 0:
        raise OptionError("--chords", f"must be at least 0, got {a.chords}")
    res = analyze(a.file, piece=a.piece, limits=limits_from(a), meter=a.meter)
    d = res.to_dict()
    if a.json:
        print(dumps(d, indent=1))
    else:
        print("\n".join(_summary(d, a.chords)))
    if a.png:
        for p in res.save_pictures(a.png):
            if not a.json:
                print(f"  picture      {p}")
    return 0


def cmd_transcribe(a: argparse.Namespace) -> int:
    from tunesmith.music.audio import AUDIO_EXTS, transcribe, transcription_meter
    from tunesmith.music.io import save_midi, save_musicxml

    src = Path(a.audio)
    if src.suffix.lower() not in AUDIO_EXTS:
        raise OptionError("AUDIO", f"'{src}' is not an audio file ({', '.join(sorted(AUDIO_EXTS))})")
    out = Path(a.out) if a.out else src.with_suffix(".mid")
    if out.suffix.lower() not in (".mid", ".midi", ".musicxml", ".xml"):
        raise OptionError("--out", f"must end in .mid (MIDI) or .musicxml (sheet music), got '{out}'")
    if out.exists() and not a.force:
        raise OptionError("--out", f"'{out}' exists; use --force to replace it")
    for name, v in (("--onset-threshold", a.onset_threshold), ("--frame-threshold", a.frame_threshold)):
        if not 0 < v < 1:
            raise OptionError(name, f"must be between 0 and 1, got {v}")
    if not src.is_file():
        raise BadInputError(src, "no such file")
    lim = limits_from(a)
    score = transcribe(src, max_minutes=min(lim.max_minutes, lim.max_audio_minutes), onset_threshold=a.onset_threshold,
                       frame_threshold=a.frame_threshold, raw_onsets=a.raw_onsets, meter=a.meter)
    lim.check_score(src, score)
    if out.suffix.lower() in (".musicxml", ".xml"):
        save_musicxml(score, out)  # sheet music: music21 notates it in the transcription's meter and bars
    else:
        save_midi(score, out)
    m = transcription_meter(score)
    if m is None:
        meter = (f"{score.time_signature()} as given, bars from the recording's start (too few notes to place them)"
                 if a.meter else f"{score.time_signature()} (assumed: too few notes to estimate it)")
    elif m["given"]:
        meter = f"{m['time_signature']} as given, bar 1's line at {m['first_bar_line_seconds'] + 0.0:.2f} s"
    else:
        meter = f"{m['time_signature']} (estimated, confidence {m['confidence']:.2f})"
    tuning = next((t.split(":")[1] for t in score.meta.tags if t.startswith("tuning:")), None)
    tuned = f", tuned {tuning} cents from A440 (heard at A440)" if tuning else ""
    print(f"wrote {out}: {score.n_notes} note{'' if score.n_notes == 1 else 's'}, {score.duration_seconds():.1f} s, {meter}, "
          f"{score.tempo():.0f} qpm{tuned}")
    return 0


def add_search_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("index", help="build or update the similarity-search index (bundled corpora, your folders)",
                       description="Index the melodies of the bundled corpora (default: all of them) and of any "
                       "folders you name, under $TUNESMITH_HOME/index. Re-running parses only new pieces.")
    s.add_argument("sources", nargs="*", help="corpus names or folders (default: every bundled corpus)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("search", help="find pieces whose melody matches a snippet (file, ABC, audio, bar range)",
                       description="Transposition- and tempo-invariant melody search over the index: the top "
                       "pieces with a score (1 = the whole query aligns) and the matching bars.")
    s.add_argument("query", nargs="?", help="a music or audio file, or ABC text (e.g. 'K:D\\nABcd efge')")
    s.add_argument("--top", type=int, default=10)
    s.add_argument("--bars", help="use only these bars of the query file, e.g. 5-8")
    s.add_argument("--piece", type=int, default=1, help="which tune of a multi-tune query file (1-based)")
    s.add_argument("--near-duplicates", metavar="FOLDER",
                   help="instead: list pairs of near-identical pieces in FOLDER (or a corpus name)")
    s.add_argument("--threshold", type=float, default=0.9, help="alignment score for --near-duplicates")
    s.add_argument("--json", action="store_true")
    add_limits(s)
    s.set_defaults(func=cmd_search)


def cmd_index(a: argparse.Namespace) -> int:
    import time

    from tunesmith.mir.search import (
        SearchIndex,
        build_part,
        default_sources,
        index_home,
        is_indexed,
    )

    sources = a.sources or default_sources()  # 'folk' once, not its three parts
    t0 = time.perf_counter()
    for src in sources:
        part, added = build_part(src, progress=not a.quiet)
        print(f"indexed {src}: {len(part.ids)} pieces ({added} new)")
    idx = SearchIndex.load()
    size = sum(f.stat().st_size for f in index_home().iterdir())
    print(f"index {index_home()}: {len(idx)} pieces, {idx.n_windows} windows, {size / 2**20:.1f} MiB, "
          f"{time.perf_counter() - t0:.1f} s")
    missing = [c for c in default_sources() if not is_indexed(c)]
    if missing:  # a folder indexed into a fresh home: searches would find its pieces only
        print(f"note: the bundled corpora {', '.join(missing)} are not in this index, so a search finds only what "
              "is; 'tunesmith index' with no folder adds them", file=sys.stderr)
    return 0


def _bar_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        lo, _, hi = text.partition("-")
        r = (int(lo), int(hi or lo))
    except ValueError:
        raise OptionError("--bars", f"'{text}' is not a bar range like 5-8") from None
    if r[0] < 1 or r[1] < r[0]:
        raise OptionError("--bars", f"'{text}' is not a bar range like 5-8")
    return r


def cmd_search(a: argparse.Namespace) -> int:
    import json
    import tempfile

    from tunesmith.mir.search import (
        MAX_QUERY_NOTES,
        SearchIndex,
        build_part,
        near_duplicates,
        query_melody,
    )
    from tunesmith.music.audio import AUDIO_EXTS, RETUNE_MIN_CENTS, recording_tuning

    if not 1 <= a.top <= 1000:  # before any work; the Python API allows up to search.MAX_TOP
        raise OptionError("--top", f"must be between 1 and 1000, got {a.top}")
    if not 0 < a.threshold <= 1:
        raise OptionError("--threshold", f"must be in (0, 1], got {a.threshold}")
    if a.near_duplicates:
        from tunesmith.music.corpora import is_corpus

        if not (is_corpus(a.near_duplicates) or Path(a.near_duplicates).is_dir()):
            raise OptionError("--near-duplicates", f"'{a.near_duplicates}' is neither a folder nor a bundled corpus")
        with tempfile.TemporaryDirectory() as home:
            part, _ = build_part(a.near_duplicates, progress=False, home=Path(home))
            pairs = near_duplicates(SearchIndex([part]), threshold=a.threshold)
        if a.json:
            print(json.dumps([{"a": x, "b": y, "score": round(s, 4)} for x, y, s in pairs], indent=1))
        else:
            print(f"{len(pairs)} near-duplicate pair(s) in {a.near_duplicates} (score ≥ {a.threshold:g})")
            for x, y, s in pairs:
                print(f"  {s:.3f}  {x}  ~  {y}")
        return 0
    if not a.query:
        raise OptionError("QUERY", "give a file or ABC text to search with (or --near-duplicates FOLDER)")
    q = query_melody(a.query, bars=_bar_range(a.bars), piece=a.piece, limits=limits_from(a))
    if len(q.pitches) > MAX_QUERY_NOTES:  # a query's melody has its repeated notes merged already
        print(f"note: the query has {len(q.pitches)} notes; searching with its first {MAX_QUERY_NOTES} "
              "(choose others with --bars)", file=sys.stderr)
    if q.upbeat:
        print(f"note: an upbeat of {q.upbeat:g} quarter note(s) was read in the query (MIDI writes it at time 0); "
              "its bars count from the bar it begins in", file=sys.stderr)
    if not q.metric and Path(a.query).suffix.lower() in AUDIO_EXTS and Path(a.query).is_file():
        from tunesmith.mir.analysis import spell_melody

        # what was heard, so that a hummed query with a wrong note can be hummed again
        heard = " ".join(spell_melody(q.pitches)[:24])
        print(f"note: the tune as heard ({len(q.pitches)} notes, repeats as one): {heard}"
              + (" …" if len(q.pitches) > 24 else ""), file=sys.stderr)
        if q.voices_heard is not None:
            print(f"warning: several voices were heard (two notes at {q.voices_heard:.0%} of the onsets); the tune "
                  "searched with is the loudest note at each onset, which may be another voice's: record the tune "
                  "alone", file=sys.stderr)
        cents = recording_tuning(a.query)  # read already by the transcription (kept per file)
        if abs(cents) > RETUNE_MIN_CENTS:
            print(f"note: the recording is tuned {cents:+.0f} cents from A440; its notes were heard at A440",
                  file=sys.stderr)
    hits = SearchIndex.load().search(q, top=a.top)
    if a.json:
        print(json.dumps([h.to_dict() for h in hits], indent=1))
        return 0
    for h in hits:
        print(f"{h.rank:3}. {h.score:.3f}  {h.name}  (bars {h.bars[0]}–{h.bars[1]})")
    return 0


def add_classify_command(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("classify", help="who wrote it, which region or collection: class probabilities "
                       "(or 'classify train' to train a classifier)",
                       description="'tunesmith classify FILE|FOLDER --task composer|region|collection' prints "
                       "class probabilities for every piece (calibrated: 0.8 is right about 8 times in 10), from "
                       "the bundled classifiers. 'tunesmith classify "
                       "train --task T --out FOLDER' cross-validates (folds grouped by piece) and trains one on "
                       "the bundled corpora, with a model card and a confusion-matrix PNG. (A file named 'train' "
                       "is ./train.)")
    s.add_argument("target", help="a music or audio file, a folder, or the word 'train'")
    s.add_argument("--task", help="composer, region or collection (default composer, or --model's task)")
    s.add_argument("--model", metavar="FOLDER", help="classify with a classifier you trained instead of the bundled one")
    s.add_argument("--top", type=int, default=3, help="classes shown per piece (default 3; --json has all)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--out", help="train: the classifier folder to write (default $TUNESMITH_HOME/classifiers/TASK)")
    s.add_argument("--folds", type=int, help="train: cross-validation folds (default 5)")
    s.add_argument("--force", action="store_true", help="train: replace an existing classifier in --out")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    add_limits(s)
    s.set_defaults(func=cmd_classify)


def cmd_classify(a: argparse.Namespace) -> int:
    import json

    from tunesmith.mir import classify as C

    task = C.task_of(a.task or "composer")
    if a.target == "train":
        if a.model:
            raise OptionError("--model", "is for classifying; 'classify train' writes --out")
        from tunesmith.music.dataset import tunesmith_home

        out = Path(a.out) if a.out else tunesmith_home() / "classifiers" / task.name
        rep = C.train_task(task.name, out, force=a.force, folds=a.folds or C.FOLDS, progress=not a.quiet)
        if a.json:
            print(json.dumps(rep, indent=1))
            return 0
        print(f"{task.name}: {rep['pieces']} pieces, {len(rep['classes'])} classes, {rep['folds']}-fold "
              "cross-validation grouped by piece")
        for name, key in (("model", "model"), ("simple-feature baseline", "simple_baseline"),
                          ("majority class", "majority_baseline")):
            r = rep[key]
            print(f"  {name:24} accuracy {r['accuracy']:.3f} [{r['accuracy_ci'][0]:.3f}, {r['accuracy_ci'][1]:.3f}]"
                  f"  macro-F1 {r['macro_f1']:.3f} [{r['macro_f1_ci'][0]:.3f}, {r['macro_f1_ci'][1]:.3f}]")
        cal = rep["calibration"]
        print(f"  calibration: temperature {cal['temperature']:.2f}; expected calibration error out of fold "
              f"{cal['before']['ece']:.3f} → {cal['after']['ece']:.3f}")
        print(f"wrote {out} (model.safetensors, config.json, README.md, confusion.png, reliability.png)")
        return 0
    for opt in ("out", "folds"):
        if getattr(a, opt) is not None:
            raise OptionError(f"--{opt}", "only applies to 'classify train'")
    if a.force:
        raise OptionError("--force", "only applies to 'classify train'")
    if a.top < 1:
        raise OptionError("--top", f"must be at least 1, got {a.top}")
    clf = C.load_classifier(a.model or task.name)
    if a.model and a.task and clf.task != task.name:
        raise OptionError("--model", f"'{a.model}' was trained for '{clf.task}', not '{task.name}'")
    files = C.files_in(a.target)
    errors: list = []
    preds = C.classify_files(files, clf, limits=limits_from(a), errors=errors)
    if not preds and len(errors) == 1:  # one file (or one piece) and nothing to say of it: its reason
        raise TunesmithError(errors[0][1])
    if a.json:
        print(json.dumps({"task": clf.task, "classes": clf.classes, "pieces": [p.to_dict() for p in preds],
                          "errors": [{"file": f, "error": m} for f, m in errors]}, indent=1))
    else:
        for p in preds:
            name = p.file + (f" #{p.piece}" if p.piece > 1 or len(preds) > len(files) else "")
            shown = ", ".join(f"{c} {v:.2f}" for c, v in list(p.probabilities.items())[:a.top])
            print(f"{name}: {shown}")
    for _f, m in errors:
        print(f"tunesmith: warning: {m}; skipped", file=sys.stderr)
    if not preds:
        raise OptionError("TARGET", f"no piece with notes in '{a.target}'")
    return 0
