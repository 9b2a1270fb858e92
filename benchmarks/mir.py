"""Music information retrieval figures → benchmarks/results-mir.json (BENCHMARKS.md via run.py).

    python benchmarks/mir.py [--only key,chords,search,audio,meter,pickup,tuning,robust,classify,continue,notation] [--queries 1000] [--audio-queries 200] [--audio-pieces 100]
                             [--seed 0] [--out benchmarks/results-mir.json]

- key: the Bach chorales' stated keys against our key finder (notes only; notes + key
  signature), music21's Krumhansl–Schmuckler (``analyze('key')``), with the MIREX weighted score.
- chords: cadences found in the chorales, and the chords a chorale's soprano alone implies
  against the chords its four voices hold.
- search: snippets of 2–4 bars of random indexed pieces, randomly transposed, with a tempo
  change and, in every bar, one ornament (an added neighbour note) or a changed rhythm; some
  rendered to audio with the SoundFont and transcribed. Top-1, top-10, MRR, latency.
- audio: held-out chorales and folk tunes rendered at varied tempi and instruments: tempo
  within 4 %, audio key = symbolic key, transcription note F1 (mir_eval, onset within 50 ms).
- meter, pickup: a recording's meter and bar lines; a MIDI file's upbeat.
- tuning: recordings tuned off A440 (the synthesizer's pitch bend), transcribed retuned and as heard
  (half of --audio-pieces pieces, each at five tunings).
- robust: the audio figures and recorded search queries on recordings that are not clean renders —
  another SoundFont, a reverberant room, pink noise, MP3 (half of --audio-pieces pieces and of
  --audio-queries queries, each under the five conditions).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results-mir.json"


def _mirex(est: str, ref: str) -> float:
    from tunesmith.music.keys import parse_key

    (et, em), (rt, rm) = parse_key(est), parse_key(ref)
    if (et, em) == (rt, rm):
        return 1.0
    if em == rm and (et - rt) % 12 in (5, 7):
        return 0.5
    if em != rm and ((em == "minor" and (rt - et) % 12 == 3) or (em == "major" and (et - rt) % 12 == 3)):
        return 0.3
    if et == rt:
        return 0.2
    return 0.0


def bench_key() -> dict:
    from tqdm import tqdm

    from tunesmith.evaluate.metrics import extract_notes
    from tunesmith.mir.keys import find_key
    from tunesmith.music.convert import score_to_music21
    from tunesmith.music.corpora import corpus_files
    from tunesmith.music.io import load_score
    from tunesmith.music.keys import key_name, parse_key

    rows, unstated = [], []
    for f in tqdm(corpus_files("bach-chorales"), desc="key", leave=False):
        s = load_score(f)
        if s.meta.key is None:  # its parts' signature states no mode: no key to score against
            unstated.append(f.stem)
            continue
        ref = key_name(*parse_key(s.meta.key))
        n = extract_notes(s)
        ks = s.music.key_signatures
        sig = int(ks[0].key) if len(ks) else None
        ours = find_key(n).key
        ours_sig = find_key(n, signature=sig).notated or find_key(n).key
        k = score_to_music21(s).analyze("key")
        m21 = key_name(parse_key(k.tonic.name.replace("-", "b"))[0], k.mode)
        bass_end = int(n.pitch[n.end >= n.end.max() - n.tpq // 2].min()) % 12
        rows.append((ref, ours, ours_sig, m21, bass_end))
    out = {"pieces": len(rows), "no_stated_key": unstated}
    for i, name in ((1, "ours_notes_only"), (2, "ours_notated"), (3, "music21_krumhansl")):
        out[name] = {"exact": round(float(np.mean([r[i] == r[0] for r in rows])), 4),
                     "mirex_weighted": round(float(np.mean([_mirex(r[i], r[0]) for r in rows])), 4)}
    # chorales whose stated key is the key signature's reading while the music ends a fourth higher
    # (minor tunes notated with one flat fewer, "Dorian" signatures): the stated key is not the sounding key
    dorian = [r for r in rows if (r[4] - parse_key(r[0])[0]) % 12 == 5 and parse_key(r[0])[1] == "minor"]
    out["stated_minor_ending_a_fourth_higher"] = len(dorian)
    out["ours_notes_only"]["exact_excluding_those"] = round(float(np.mean(
        [r[1] == r[0] for r in rows if r not in dorian])), 4)
    return out


def bench_chords() -> dict:
    """Chords and cadences on the Bach chorales (the bundled corpus: one file per chorale).

    - cadences: how many chorales the analysis ends on an authentic cadence (Bach's almost all
      do, a few on a half or plagal close), and the cadences found, by type;
    - the chords a melody implies: each chorale's soprano alone, one chord per bar, against the
      chord root Bach's four voices hold longest in that bar (on a tie, the downbeat's) — the
      analysis of a melody now, and the four-voice labelling applied to the melody (every triad
      and seventh chord, the tune's lowest note as the bass), as it was before 2026-12-07;
    - the melody of one track of several voices: the chorale's four voices merged into one
      track, the melody line's notes against the soprano's (precision, recall)."""
    import dataclasses

    from tqdm import tqdm

    from tunesmith.evaluate.metrics import extract_notes
    from tunesmith.mir import analysis as A
    from tunesmith.music.corpora import corpus_files
    from tunesmith.music.io import load_score

    final: dict[str, int] = {}
    types: dict[str, int] = {}
    other_key = agree = agree_plain = bars = pieces = 0
    line = {True: [0, 0, 0], False: [0, 0, 0]}  # true positives, melody notes, soprano notes
    for f in tqdm(corpus_files("bach-chorales"), desc="chords", leave=False):
        s = load_score(f)
        a = A.analyze_score(s)
        pieces += 1
        cs = a.cadences
        end = cs[-1]["type"] if cs and cs[-1]["bar"] >= a.bars else "none"
        final[end] = final.get(end, 0) + 1
        for c in cs:
            types[c["type"]] = types.get(c["type"], 0) + 1
            other_key += c["key"] != a.key.key
        n = extract_notes(s)
        tracks = np.unique(n.track[n.pitched])
        if len(tracks) != 4:
            continue
        by_bar: dict[int, list] = {}
        for c in a.chords:
            by_bar.setdefault(c.bar, []).append(c)
        main = {b: max(cs, key=lambda c: (sum(x.root == c.root for x in cs), c.beat == 1.0)).root
                for b, cs in by_bar.items()}
        top = max(tracks, key=lambda t: n.pitch[n.track == t].mean())
        k = n.track == top
        sop = dataclasses.replace(n, start=n.start[k], end=n.end[k], pitch=n.pitch[k], track=n.track[k], drum=n.drum[k])
        implied = {c.bar: c.root for c in A.chords(sop, a.key.tonic, a.key.mode, per="bar")}
        # the four voices merged into one track (as a pianist's file or a transcription has them):
        # how much of the melody line is the soprano's, with and without the notes struck under it
        one = dataclasses.replace(n, track=np.zeros_like(n.track))
        truth = set(zip(sop.start.tolist(), sop.pitch.tolist()))
        for hide in (True, False):
            idx = A.melody_line(one, hide_under=hide)
            got = set(zip(n.start[idx].tolist(), n.pitch[idx].tolist()))
            line[hide][0] += len(got & truth)
            line[hide][1] += len(got)
            line[hide][2] += len(truth)
        plain = {}
        for b in range((int(sop.end.max()) - 1) // sop.bar_ticks + 1):
            t0, t1 = b * sop.bar_ticks, (b + 1) * sop.bar_ticks
            on = (sop.start < t1) & (sop.end > t0)
            if on.any():
                dur = (np.minimum(sop.end[on], t1) - np.maximum(sop.start[on], t0)).astype(float)
                w = np.bincount(sop.pitch[on] % 12, weights=dur, minlength=12)
                root, _, fit = A.label_chord(w, int(sop.pitch[on].min()) % 12)
                if fit > 0:
                    plain[b + 1] = root
        for b, root in main.items():
            if b in implied:
                bars += 1
                agree += implied[b] == root
                agree_plain += plain.get(b) == root
    return {"pieces": pieces, "final_cadence": dict(sorted(final.items(), key=lambda x: -x[1])),
            "cadences_by_type": dict(sorted(types.items(), key=lambda x: -x[1])),
            "cadences_in_another_key": other_key, "melody_bars": bars,
            "melody_chord_root_agreement": round(agree / max(bars, 1), 4),
            "melody_chord_root_agreement_four_voice_labelling": round(agree_plain / max(bars, 1), 4),
            "merged_voices_melody": {k: {"precision": round(v[0] / max(v[1], 1), 4), "recall": round(v[0] / max(v[2], 1), 4)}
                                     for k, v in (("notes_under_hidden", line[True]), ("all_top_notes", line[False]))}}


def _ornament(p: np.ndarray, t: np.ndarray, bq: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """One change per bar: an added upper/lower neighbour before a note, or a changed rhythm
    (a note split into two repeated halves, or two notes' durations exchanged)."""
    p, t = list(p), list(t)
    bars = sorted({int(x // bq) for x in t})
    for b in bars:
        idx = [i for i, x in enumerate(t) if int(x // bq) == b]
        i = idx[rng.integers(len(idx))]
        if rng.random() < 0.5:  # ornament: a neighbour note taking a little time before note i
            if i == 0:  # nothing before the first note: ornament the way into the second
                i = min(1, len(t) - 1)
            prev = t[i - 1] if i > 0 else t[i]
            p.insert(i, p[i] + int(rng.choice([-2, -1, 1, 2])))
            t.insert(i, (prev + t[i]) / 2)
        else:  # rhythm: split note i (a repeated note) — pitches unchanged
            nxt = t[i + 1] if i + 1 < len(t) else t[i] + 1.0
            p.insert(i + 1, p[i])
            t.insert(i + 1, (t[i] + nxt) / 2)
    return np.array(p, np.int16), np.array(t, np.float32)


def _draw_snippet(idx, rng) -> tuple:
    """A piece of the index and a snippet length: (position, melody, onsets, bar length in
    quarters, bars, snippet bars 2–4)."""
    i = int(rng.integers(len(idx)))
    on = idx.onsets[idx.offsets[i]:idx.offsets[i + 1]]
    bq = float(idx.bar_quarters[i]) or 4.0
    return i, idx.melody(i), on, bq, int(on[-1] // bq) + 1, int(rng.integers(2, 5))


def offbeat_ranks(idx, n: int, seed: int = 0) -> list[int]:
    """Ranks of the source of ``n`` snippets begun off the bar line — a beat or more into a bar —
    and typed from their first note (their bar lines read from there, as an ABC snippet without
    an upbeat is), otherwise drawn and altered as :func:`bench_search`'s; their own draw, so that
    the benchmark's other queries stay the same."""
    from tunesmith.mir.search import Melody

    rng_off = np.random.default_rng(10_000 + seed)
    off_ranks = []
    while len(off_ranks) < n:
        i, mel, on, bq, n_bars, nb = _draw_snippet(idx, rng_off)
        if n_bars <= nb + 1:
            continue
        start = int(rng_off.integers(0, n_bars - nb)) * bq + float(rng_off.integers(1, max(int(round(bq)), 2)))
        keep = (on >= start) & (on < start + nb * bq)
        if keep.sum() < 3:
            continue
        p, t = _ornament(mel[keep] + int(rng_off.integers(-6, 7)), on[keep] - start, bq, rng_off)
        tempo = float(rng_off.uniform(0.7, 1.4))
        try:
            hits = idx.search(Melody(p, (t - t.min()) * tempo, bq * tempo), top=50)
        except Exception:  # noqa: BLE001 - fewer than three distinct notes: a miss
            hits = []
        off_ranks.append(_source_rank(idx, hits, i))
    return off_ranks


def _altered_snippet(idx, rng) -> tuple | None:
    """A snippet of 2–4 bars of a random indexed piece, randomly transposed (±6 semitones), with one
    ornament or changed rhythm in every bar (:func:`_ornament`) and a tempo change (0.7–1.4):
    (position, its melody, its onsets, bar length in quarters, first bar, the snippet's notes,
    pitches, onsets in the new tempo's quarters, tempo), or None for a snippet of under three notes."""
    while True:
        i, mel, on, bq, n_bars, nb = _draw_snippet(idx, rng)
        if n_bars > nb:
            break
    b0 = int(rng.integers(0, n_bars - nb + 1))
    keep = (on >= b0 * bq) & (on < (b0 + nb) * bq)
    if keep.sum() < 3:
        return None
    shift = int(rng.integers(-6, 7))
    p, t = _ornament(mel[keep] + shift, on[keep] - b0 * bq, bq, rng)
    tempo = float(rng.uniform(0.7, 1.4))  # a tempo change: time scaled (search ignores durations)
    return i, mel, on, bq, b0, keep, p, t * tempo, tempo


def _render_query(p, t, tempo: float, program: int, wav: Path, soundfont=None) -> Path:
    """A snippet (pitches, onsets in quarters at ``tempo``) played legato on ``program`` at
    100·tempo qpm, rendered with the SoundFont (pretty_midi's unless ``soundfont``)."""
    import symusic

    from tunesmith.music.render import render_wav
    from tunesmith.music.score import Meta, Score

    music = symusic.Score(480)
    music.tempos.append(symusic.Tempo(0, 100.0 * tempo))
    tr = symusic.Track("query", program, False)
    ends = np.r_[t[1:], t[-1] + 1.0]
    for pp, a, e in zip(p, t, ends):
        tr.notes.append(symusic.Note(int(a / tempo * 480), max(60, int((e - a) / tempo * 480)), int(pp), 90))
    music.tracks.append(tr)
    return render_wav(Score(music, Meta()), wav, sample_rate=22050, soundfont=soundfont)


def _tune(melody: np.ndarray) -> bytes:
    """A melody in any key: its intervals (the search cannot tell a melody from its transposition:
    Bach harmonised one chorale tune in several keys, and the Essen collection holds songs twice in
    different keys)."""
    return np.diff(np.asarray(melody, np.int64)).tobytes()


def _same_melody(a: np.ndarray, b: np.ndarray) -> bool:
    """The same tune note for note, in any key (:func:`_tune`)."""
    return len(a) == len(b) and _tune(a) == _tune(b)


def _source_rank(idx, hits, i: int) -> int:
    """The rank of the snippet's source among ``hits`` (1_000_000 if absent): the piece, or a piece
    with the very same melody in any key (many chorales harmonise one tune)."""
    true, true_mel = idx.ids[i], idx.melody(i)
    for h in hits:
        j = idx.position[h.piece_id]
        if h.piece_id == true or _same_melody(idx.melody(j), true_mel):
            return h.rank
    return 1_000_000


def _fresh_index(home: Path):
    """The index of every bundled corpus built from scratch in ``home`` (the corpora's prepared
    datasets are reused), then loaded: (index, build seconds, load seconds)."""
    from tunesmith.mir.search import SearchIndex, build_part, default_sources

    home.mkdir(parents=True)
    t0 = time.perf_counter()
    for src in default_sources():
        build_part(src, progress=False, home=home)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx = SearchIndex.load(home)
    return idx, build_s, time.perf_counter() - t0


def bench_search(n_queries: int, n_audio: int, seed: int = 0) -> dict:
    from tqdm import tqdm

    from tunesmith.mir.search import Melody, align, melody_of
    from tunesmith.music.io import load_score

    bench_home = Path(tempfile.mkdtemp(prefix="tunesmith-search-bench-"))
    home = bench_home / "index"  # $TUNESMITH_HOME/index, so that tunesmith.search finds it (api latency below)
    idx, build_s, load_s = _fresh_index(home)
    size = sum(f.stat().st_size for f in home.iterdir())
    rng = np.random.default_rng(seed)
    api_queries = []  # the first symbolic queries, for the latency through the Python API
    ranks, lat, audio_ranks, same, audio_same = [], [], [], [], []
    # per query, in the order of ranks + audio_ranks: distinct notes, and how many pieces of different
    # melodies hold the unaltered snippet note for note (the truth among them)
    notes_n, audio_notes_n, holders, audio_holders = [], [], [], []

    with tempfile.TemporaryDirectory() as tmp:
        for qn in tqdm(range(n_queries), desc="search", leave=False):
            q = _altered_snippet(idx, rng)
            if q is None:
                continue
            i, mel, on, bq, b0, keep, p, t, tempo = q
            audio = qn < n_audio
            if audio:  # render to audio with the SoundFont and transcribe
                wav = _render_query(p, t, tempo, int(rng.choice([0, 40, 73, 24])), Path(tmp) / f"q{qn}.wav")
                qmel = melody_of(load_score(wav))
            else:
                qmel = Melody(p, t, bq * tempo)
                if len(api_queries) < 100:  # in the piece's time, so that its time signature holds its bars
                    api_queries.append((p, t / tempo, bq))
            # the ceiling: a ranker cannot tell apart pieces that hold the unaltered snippet note for
            # note; among k such melodies it puts the right one first by chance 1/k
            clean = Melody(mel[keep], on[keep] - b0 * bq, bq)
            k_same = {_tune(idx.melody(i))}
            if len(clean.pitches) >= 3:
                for h in idx.search(clean, top=3000, candidates=3000):
                    if h.score >= 0.999:
                        k_same.add(_tune(idx.melody(idx.position[h.piece_id])))
            (audio_holders if audio else holders).append(len(k_same))
            (audio_notes_n if audio else notes_n).append(int(keep.sum()))  # the snippet's notes (the index merged repeats)
            if len(qmel.pitches) < 3:
                (audio_ranks if audio else ranks).append(1_000_000)
                (audio_same if audio else same).append(1_000_000)
                continue
            ts = time.perf_counter()
            hits = idx.search(qmel, top=50)
            lat.append(time.perf_counter() - ts)
            true = idx.ids[i]
            r, r_same = _source_rank(idx, hits, i), 1_000_000
            for h in hits:  # also: a piece holding the unaltered snippet note for note (the tune elsewhere)
                j = idx.position[h.piece_id]
                if h.piece_id == true or align(mel[keep], idx.melody(j), on[keep], idx.onsets[idx.offsets[j]:idx.offsets[j + 1]],
                                               q_bar=bq, t_bar=float(idx.bar_quarters[j]) or 4.0)[0] >= 0.999:
                    r_same = h.rank
                    break
            (audio_ranks if audio else ranks).append(r)
            (audio_same if audio else same).append(r_same)
    off_ranks = offbeat_ranks(idx, n_queries // 4, seed)
    api_lat = _api_latency(bench_home, api_queries)
    shutil.rmtree(bench_home)
    ranks_all = np.array(ranks + audio_ranks)

    def summ(r: np.ndarray) -> dict:
        r = np.asarray(r)
        return {"queries": int(len(r)), "top1": round(float((r <= 1).mean()), 4), "top10": round(float((r <= 10).mean()), 4),
                "mrr": round(float(np.mean(np.where(r <= 50, 1.0 / r, 0.0))), 4)}

    k_all = np.array(holders + audio_holders)
    n_all = np.array(notes_n + audio_notes_n)
    same_all = np.array(same + audio_same)
    by_length = {}
    for label, sel in (("under 8 notes", n_all < 8), ("8 notes or more", n_all >= 8)):
        if sel.any():
            by_length[label] = {**summ(ranks_all[sel]), "counting_the_snippet_elsewhere": summ(same_all[sel]),
                                "ceiling_top1": round(float(np.mean(1.0 / k_all[sel])), 4),
                                "ceiling_top10": round(float(np.mean(np.minimum(1.0, 10.0 / k_all[sel]))), 4)}
    return {"pieces": len(idx), "windows": int(idx.n_windows), "index_build_seconds": round(build_s, 1),
            "ceiling_top1": round(float(np.mean(1.0 / k_all)), 4),
            # among k pieces it cannot tell apart, a ranker has the right one in its top ten by chance min(1, 10/k)
            "ceiling_top10": round(float(np.mean(np.minimum(1.0, 10.0 / k_all))), 4),
            "snippet_in_other_melodies": round(float(np.mean(k_all > 1)), 4), "by_length": by_length,
            "index_load_seconds": round(load_s, 2),
            "index_mib": round(size / 2**20, 2), "all": summ(ranks_all), "symbolic": summ(np.array(ranks)),
            "audio": summ(np.array(audio_ranks)),
            "begun_off_the_bar_line": summ(np.array(off_ranks)),
            "all_counting_the_snippet_elsewhere": summ(np.array(same + audio_same)),
            "latency_ms_p50": round(float(np.percentile(lat, 50)) * 1000, 2),
            "latency_ms_p95": round(float(np.percentile(lat, 95)) * 1000, 2),
            "api_latency_ms": api_lat}


def _api_latency(tunesmith_home: Path, queries: list) -> dict:
    """The time a user's query takes through the Python API: each query written as a MIDI file
    (its bars as written), then ``tunesmith.search(path)`` — the file read, its melody taken and
    the index searched — with the index already loaded by a first call (as a loop of searches
    finds it). The first call's time, which loads the index, is reported apart."""
    import os

    import symusic

    import tunesmith
    from tunesmith.music.io import save_midi
    from tunesmith.music.score import Meta, Score

    if not queries:
        return {}
    old = os.environ.get("TUNESMITH_HOME")
    os.environ["TUNESMITH_HOME"] = str(tunesmith_home)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for k, (p, t, bq) in enumerate(queries):
                m = symusic.Score(480)
                m.tempos.append(symusic.Tempo(0, 100.0))
                num, den = (int(round(bq)), 4) if abs(bq - round(bq)) < 1e-6 else (int(round(bq * 2)), 8)
                m.time_signatures.append(symusic.TimeSignature(0, max(num, 1), den))
                tr = symusic.Track("query", 0, False)
                ends = np.r_[t[1:], t[-1] + 1.0]
                for pp, a, e in zip(p, t, ends):
                    tr.notes.append(symusic.Note(int(round(a * 480)), max(30, int(round((e - a) * 480))), int(pp), 90))
                m.tracks.append(tr)
                f = Path(tmp) / f"q{k}.mid"
                save_midi(Score(m, Meta()), f)
                files.append(f)
            from tunesmith.mir import search as S

            S._LOADED.clear()  # the first call loads the index, as a fresh process's does
            t0 = time.perf_counter()
            tunesmith.search(files[0])
            first = time.perf_counter() - t0
            lat = []
            for f in files:
                t0 = time.perf_counter()
                tunesmith.search(f)
                lat.append(time.perf_counter() - t0)
    finally:
        if old is None:
            os.environ.pop("TUNESMITH_HOME", None)
        else:
            os.environ["TUNESMITH_HOME"] = old
    return {"queries": len(lat), "first_call_ms": round(first * 1000, 1),
            "p50": round(float(np.percentile(lat, 50)) * 1000, 2), "p95": round(float(np.percentile(lat, 95)) * 1000, 2)}


AUDIO_PROGRAMS = {"piano": 0, "strings": 48, "organ": 19, "flute": 73, "guitar": 24}  # the audio tables' instruments


def held_out_pieces(rng, n_per_corpus: int) -> list:
    """``n_per_corpus`` held-out (valid and test) pieces of bach-chorales and then of folk, drawn
    by ``rng`` — the audio, tuning and robustness tables' pieces."""
    from tunesmith.music.dataset import open_dataset

    pieces = []
    for corpus in ("bach-chorales", "folk"):
        ds = open_dataset(corpus, progress=False)
        held = [e for e in ds.entries if e["split"] in ("valid", "test")]
        pieces += [ds.load(held[int(k)]) for k in rng.choice(len(held), min(len(held), n_per_corpus), replace=False)]
    return pieces


def bench_audio(n_pieces: int, seed: int = 0) -> dict:
    import librosa
    import mir_eval
    from tqdm import tqdm

    from tunesmith.evaluate.metrics import extract_notes
    from tunesmith.mir.analysis import texture_of
    from tunesmith.mir.audio import HOP, analyze_audio
    from tunesmith.mir.keys import find_key
    from tunesmith.music.audio import basic_pitch_notes
    from tunesmith.music.io import load_score
    from tunesmith.music.render import render_wav

    rng = np.random.default_rng(seed)
    pieces = held_out_pieces(rng, n_pieces // 2)
    programs = AUDIO_PROGRAMS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(tqdm(pieces, desc="audio", leave=False)):
            inst = list(programs)[k % len(programs)]
            qpm = float(rng.uniform(70, 140))
            s = s.copy()
            m = s.music
            m.tempos.clear()
            import symusic

            m.tempos.append(symusic.Tempo(0, qpm))
            for tr in m.tracks:
                tr.program = programs[inst]
            wav = Path(tmp) / f"p{k}.wav"
            render_wav(s, wav, sample_rate=22050)
            t0 = time.perf_counter()
            a = analyze_audio(wav, pitch_track=False)
            tr_score = load_score(wav)
            dt = time.perf_counter() - t0
            sym_key = find_key(extract_notes(s)).key
            ref = s.music.to("second")
            ri = np.array([[n.time, n.time + n.duration] for t in ref.tracks for n in t.notes])
            rp = np.array([440 * 2 ** ((n.pitch - 69) / 12) for t in ref.tracks for n in t.notes])
            est = tr_score.music.to("second")
            ei = np.array([[n.time, n.time + n.duration] for t in est.tracks for n in t.notes]).reshape(-1, 2)
            # the score's time 0 is its first bar line (ticks and the offset rounded: a hair under 0 is 0)
            ei = np.maximum(ei + (tr_score.meta.audio_offset or 0.0), 0.0)
            ep = np.array([440 * 2 ** ((n.pitch - 69) / 12) for t in est.tracks for n in t.notes])
            _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05,
                                                                             offset_ratio=None)
            raw = basic_pitch_notes(wav, refine=False)  # the same notes, basic-pitch's own onsets
            f1_raw = 0.0
            if raw:
                f1_raw = mir_eval.transcription.precision_recall_f1_overlap(
                    ri, rp, np.array([[n[0], n[1]] for n in raw]), np.array([440 * 2 ** ((n[2] - 69) / 12) for n in raw]),
                    onset_tolerance=0.05, offset_ratio=None)[2]
            # the onsets analyze reports against the score's (onset F-measure, 50 ms), and librosa's detector's
            sec = 60.0 / qpm / s.music.tpq
            n_ = extract_notes(s)
            ref_on = np.unique(np.round(n_.start[n_.pitched] * sec, 3))
            y_, sr_ = librosa.load(str(wav), sr=22050)
            lib_on = librosa.onset.onset_detect(y=y_, sr=sr_, hop_length=HOP, units="time")
            on_f = float(mir_eval.onset.f_measure(ref_on, a.onsets, window=0.05)[0]) if len(a.onsets) else 0.0
            on_f_lib = float(mir_eval.onset.f_measure(ref_on, lib_on, window=0.05)[0]) if len(lib_on) else 0.0
            rows.append({"instrument": inst, "onset_f": on_f, "onset_f_librosa": on_f_lib,
                         "tempo_ok": abs(a.tempo_bpm - qpm) / qpm <= 0.04,
                         "tempo_ok_octave": min(abs(a.tempo_bpm * f - qpm) / qpm for f in (0.5, 1, 2)) <= 0.04,
                         "key_ok": a.key == sym_key, "f1": float(f1), "f1_raw": float(f1_raw), "seconds": a.seconds, "work": dt,
                         # one line or several voices, as analyze reads the recording (its melody, chords per bar)
                         "texture_ok": (texture_of(extract_notes(tr_score), recorded=True) == "melody")
                         == (len([t for t in s.music.tracks if len(t.notes)]) == 1),

                         "one_line": len([t for t in s.music.tracks if len(t.notes)]) == 1})
    by = {}
    for inst in programs:
        r = [x for x in rows if x["instrument"] == inst]
        by[inst] = round(float(np.mean([x["f1"] for x in r])), 4) if r else None
    return {"pieces": len(rows), "tempo_within_4pct": round(float(np.mean([r["tempo_ok"] for r in rows])), 4),
            "texture_right": {"one_line": round(float(np.mean([r["texture_ok"] for r in rows if r["one_line"]])), 4),
                              "several_voices": round(float(np.mean([r["texture_ok"] for r in rows
                                                                     if not r["one_line"]])), 4)},
            "tempo_within_4pct_octave_ok": round(float(np.mean([r["tempo_ok_octave"] for r in rows])), 4),
            "audio_key_equals_symbolic": round(float(np.mean([r["key_ok"] for r in rows])), 4),
            "transcription_f1": round(float(np.mean([r["f1"] for r in rows])), 4), "transcription_f1_by_instrument": by,
            "transcription_f1_raw_onsets": round(float(np.mean([r["f1_raw"] for r in rows])), 4),
            "onset_f": round(float(np.mean([r["onset_f"] for r in rows])), 4),
            "onset_f_librosa": round(float(np.mean([r["onset_f_librosa"] for r in rows])), 4),
            "onset_f_by_instrument": {i: [round(float(np.mean([x[k] for x in rows if x["instrument"] == i])), 3)
                                          for k in ("onset_f", "onset_f_librosa")] for i in programs},
            "seconds_per_minute_of_audio": round(sum(r["work"] for r in rows) / (sum(r["seconds"] for r in rows) / 60), 2)}


def render_from_first_note(s, rng, program: int, wav: Path) -> dict | None:
    """A piece of one meter rendered as a recording begins — with its first note, after a lead of
    0.05–0.3 s, not with the rest a pickup bar is padded with — at 70–140 qpm, and transcribed
    (basic-pitch, refined onsets): its notes, the rendered tempo, and the truth: the bar's
    length and its first bar line (seconds; negative before a pickup). None for a piece whose
    meter changes or that has too few notes."""
    import symusic

    from tunesmith.music.audio import basic_pitch_notes
    from tunesmith.music.render import render_wav

    s = s.copy()
    m = s.music
    ts = m.time_signatures[0] if len(m.time_signatures) else None
    if ts is None or any((t.numerator, t.denominator) != (ts.numerator, ts.denominator) for t in m.time_signatures):
        return None
    tpq = m.tpq
    bar_ticks = ts.numerator * 4 * tpq // ts.denominator
    first = min(n.time for t in m.tracks for n in t.notes)
    qpm = float(rng.uniform(70, 140))
    lead = float(rng.uniform(0.05, 0.3))
    for t in m.tracks:
        t.shift_time(int(round(lead * qpm / 60 * tpq)) - first, inplace=True)
        t.program = program
    m.tempos.clear()
    m.tempos.append(symusic.Tempo(0, qpm))
    render_wav(s, wav, sample_rate=22050)
    notes = basic_pitch_notes(wav)
    if len(notes) < 8:
        return None
    sec = 60.0 / qpm / tpq
    return {"qpm": qpm, "time_signature": f"{ts.numerator}/{ts.denominator}", "bar_s": bar_ticks * sec,
            "downbeat_s": lead - (first % bar_ticks) * sec, "program": program,
            "notes": [[round(a, 4), round(b, 4), int(p), round(v, 3)] for a, b, p, v in notes]}


def same_bar(row: dict, bar_s: float, downbeat_s: float, *, double_ok: bool = False) -> bool:
    """An estimated bar is the true one: its length within 4%, and one of its downbeats within
    70 ms of a true downbeat. ``double_ok``: a bar of twice or half the true length counts too
    (2/4 and 4/4 of one tune differ by where an editor drew the lines) if every downbeat of the
    shorter bar's grid that the longer has is a true one."""
    for f in ((0.5, 1.0, 2.0) if double_ok else (1.0,)):
        if abs(bar_s - f * row["bar_s"]) / (f * row["bar_s"]) > 0.04:
            continue
        step = min(bar_s, row["bar_s"])
        d = (downbeat_s - row["downbeat_s"]) % step
        if min(d, step - d) <= 0.07:
            return True
    return False


def bench_meter(n_pieces: int, seed: int = 0) -> dict:
    """The meter a transcription reads (``tunesmith transcribe``) on held-out chorales and folk
    tunes rendered from their first note, against the bar of their scores; beside the reading
    the transcription had before (4/4, bar 1 at the first note, at the estimated tempo)."""
    from tqdm import tqdm

    from tunesmith.music.audio import estimate_tempo
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.meter import estimate_meter

    rng = np.random.default_rng(1000 + seed)
    programs = [0, 48, 19, 73, 24]  # piano, strings, organ, flute, guitar
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for corpus in ("bach-chorales", "folk"):
            ds = open_dataset(corpus, progress=False)
            held = [e for e in ds.entries if e["split"] in ("valid", "test")]
            pick = rng.choice(len(held), min(len(held), n_pieces // 2), replace=False)
            for k in tqdm(pick, desc=f"meter ({corpus})", leave=False):
                row = render_from_first_note(ds.load(held[int(k)]), rng, programs[len(rows) % 5], Path(tmp) / "p.wav")
                if row is None:
                    continue
                notes = np.array(row["notes"], float)
                qpm = estimate_tempo(np.unique(np.round(notes[:, 0], 3)), notes=notes)
                m = estimate_meter(notes, qpm)
                first = float(notes[:, 0].min())
                rows.append({"corpus": corpus, "ts": row["time_signature"], "ts_read": m.time_signature if m else None,
                             "bar": m is not None and same_bar(row, m.bar_seconds, m.downbeat_seconds),
                             "bar_or_double": m is not None and same_bar(row, m.bar_seconds, m.downbeat_seconds,
                                                                         double_ok=True),
                             "length": m is not None and abs(m.bar_seconds - row["bar_s"]) / row["bar_s"] <= 0.04,
                             "confidence": m.confidence if m is not None else 0.0,
                             "before": same_bar(row, 4 * 60 / qpm, first),
                             "before_double": same_bar(row, 4 * 60 / qpm, first, double_ok=True),
                             "before_length": abs(4 * 60 / qpm - row["bar_s"]) / row["bar_s"] <= 0.04})

    def share(sel, key):
        return round(float(np.mean([r[key] for r in sel])), 4) if sel else None

    out = {"pieces": len(rows)}
    for label, sel in (("all", rows), ("chorales", [r for r in rows if r["corpus"] == "bach-chorales"]),
                       ("folk", [r for r in rows if r["corpus"] == "folk"])):
        out[label] = {"n": len(sel), "bar": share(sel, "bar"), "bar_or_double": share(sel, "bar_or_double"),
                      "bar_length": share(sel, "length"), "before_bar": share(sel, "before"),
                      "before_bar_or_double": share(sel, "before_double"), "before_bar_length": share(sel, "before_length")}
    conf = np.array([r["confidence"] for r in rows])
    ok = np.array([r["bar"] for r in rows])
    out["mean_confidence"] = round(float(conf.mean()), 4) if len(conf) else None
    out["bar_when_confidence_over_0.6"] = round(float(ok[conf > 0.6].mean()), 4) if (conf > 0.6).any() else None
    out["share_confidence_over_0.6"] = round(float((conf > 0.6).mean()), 4) if len(conf) else None
    from collections import Counter

    out["time_signatures"] = dict(Counter(r["ts"] for r in rows).most_common())
    # the time signature read, as written: 6/8 and 3/4 have bars of one length, 2/4 and 4/4 do not
    out["time_signature_right"] = {label: {"n": len(sel), "right": round(float(np.mean([r["ts_read"] == r["ts"]
                                                                                          for r in sel])), 4)}
                                   for label, sel in (("all", rows), ("3/4", [r for r in rows if r["ts"] == "3/4"]),
                                                      ("6/8", [r for r in rows if r["ts"] == "6/8"])) if sel}
    return out


def bench_notation(n_pieces: int, seed: int = 0) -> dict:
    """Sheet music from a recording (``tunesmith transcribe tune.wav --out tune.musicxml``): held-out
    folk tunes of one meter rendered as a recording begins (with their first note) at 70–140 qpm on
    flute, violin, piano or guitar, transcribed, and their notes compared with the score's as notation:
    a note is notated right when the transcription has the same pitch in the same bar (counted from
    the bar of the first note) at the same place in it, rounded to a sixteenth; its length right too
    when both lengths, so rounded, agree. F-measure over the score's and the transcription's notes.
    Counted over every piece (a tempo read at twice the notated one writes every note in other
    values, a 2/4 tune read in 4/4 puts every note in another place), and over those whose tempo
    (within 4%), bar (in quarter notes) and first note's place in it were read right."""
    from tqdm import tqdm

    from tunesmith.music.audio import transcribe
    from tunesmith.music.dataset import open_dataset

    rng = np.random.default_rng(2000 + seed)
    ds = open_dataset("folk", progress=False)
    held = [e for e in ds.entries if e["split"] in ("valid", "test")]
    programs = [73, 40, 0, 24]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in tqdm(rng.permutation(len(held)), desc="notation", leave=False):
            if len(rows) >= n_pieces:
                break
            sc = ds.load(held[int(k)])
            if len(sc.music.tracks) != 1 or len(sc.music.tracks[0].notes) < 8:
                continue
            wav = Path(tmp) / "p.wav"
            row = render_from_first_note(sc, rng, programs[len(rows) % len(programs)], wav)
            if row is None:
                continue
            t = transcribe(wav)
            tpq, m = sc.music.tpq, sc.music
            ts = m.time_signatures[0]
            bar_ticks = ts.numerator * 4 * tpq // ts.denominator
            first = min(n.time for n in m.tracks[0].notes)
            def q16(x: float) -> int:
                return int(round(x * 4))

            # bars counted from the one the first note is in (a pickup's, where there is one): the
            # notation, not the clock — a tempo read 1% off drifts by seconds over a tune, its bars do not
            def placed(time: int, bar: int, first_bar: int, q: int) -> tuple[int, int]:
                """(bar, place) of an onset rounded to a sixteenth first, as notation rounds it: a note
                heard a hair before a bar line is that bar's downbeat, not the last bar's end."""
                x = q16((time - first_bar * bar) / q)
                per = q16(bar / q)
                return x // per, x % per

            truth = {}  # (bar, place, pitch) -> length, places and lengths in sixteenths
            for n in m.tracks[0].notes:
                truth[(*placed(n.time, bar_ticks, first // bar_ticks, tpq), int(n.pitch))] = q16(n.duration / tpq)
            tm = t.music
            tbar = tm.time_signatures[0].numerator * 4 * tm.tpq // tm.time_signatures[0].denominator
            tfirst = min(n.time for n in tm.tracks[0].notes)
            onset_ok = length_ok = 0
            for n in tm.tracks[0].notes:
                hit = truth.get((*placed(n.time, tbar, tfirst // tbar, tm.tpq), int(n.pitch)))
                if hit is not None:
                    onset_ok += 1
                    length_ok += int(hit == q16(n.duration / tm.tpq))
            n_true, n_est = len(m.tracks[0].notes), len(tm.tracks[0].notes)
            tempo_ok = abs(t.tempo() - row["qpm"]) / row["qpm"] <= 0.04
            # the same bar (in quarter notes) with its first note at the same place in it
            bar_ok = tbar * tpq == bar_ticks * tm.tpq and q16((tfirst % tbar) / tm.tpq) == q16((first % bar_ticks) / tpq)
            both = n_true + n_est
            rows.append({"f_notes": 2 * onset_ok / both if both else 0.0,
                         "f_lengths": 2 * length_ok / both if both else 0.0, "read_right": tempo_ok and bar_ok,
                         "program": row["program"]})
    right = [r for r in rows if r["read_right"]]

    def mean(sel, key):
        return round(float(np.mean([r[key] for r in sel])), 4) if sel else None

    return {"pieces": len(rows), "tempo_and_bars_read_right": mean(rows, "read_right"),
            "notes_f": mean(rows, "f_notes"), "notes_and_lengths_f": mean(rows, "f_lengths"),
            "where_read_right": {"n": len(right), "notes_f": mean(right, "f_notes"),
                                 "notes_and_lengths_f": mean(right, "f_lengths")}}


def bench_tune_key() -> dict:
    """A tune's key against the tonic and mode its ABC K: field states: the held-out (valid and test)
    tunes of O'Neill's and Ryan's collections, read by the profile (as for a piece of several
    voices) and by the tune reader (``find_key(..., tune=True)``, fitted on their train split by
    scripts/tune_tonic.py), which generation and harmonize also use for a melody that states no
    key (``music.keys.score_key``); beside Krumhansl–Schmuckler, which they used before 2026-12-08
    (tonic only: its minor is aeolian, so its mode is compared as ionian or aeolian). Major is ionian
    and minor aeolian."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from tune_tonic import stated_tunes

    from tunesmith.mir.keys import find_key
    from tunesmith.music.keys import MODE_OF_DEGREE, estimate_key

    def reading(k):
        mode = k.modal.split(" ")[-1] if k.modal else ("ionian" if k.mode == "major" else "aeolian")
        return k.tonic, mode

    rows = []
    for n, tonic, mode, sig in stated_tunes(("valid", "test")):  # each with its signature, as analyze reads it
        sel = n.pitched
        ks_tonic, ks_quality, _ = estimate_key(n.pitch[sel], (n.end[sel] - n.start[sel]).astype(float))
        rows.append((tonic, mode, reading(find_key(n, signature=sig)), reading(find_key(n, signature=sig, tune=True)),
                     (ks_tonic, "ionian" if ks_quality == "major" else "aeolian")))
    out = {"tunes": len(rows)}
    for label, sel in (("all", lambda m: True), ("stated major or minor", lambda m: m in ("ionian", "aeolian")),
                       ("stated in another mode", lambda m: m not in ("ionian", "aeolian"))):
        r = [x for x in rows if sel(x[1])]
        if not r:
            continue
        out[label] = {"n": len(r), **{f"{who}_{what}": round(float(np.mean([f(x) for x in r])), 4)
                                      for who, i in (("profile", 2), ("tune", 3), ("krumhansl", 4))
                                      for what, f in (("tonic", lambda x, i=i: x[i][0] == x[0]),
                                                      ("tonic_and_mode", lambda x, i=i: x[i] == (x[0], x[1])))}}
    out["modes_stated"] = {m: sum(x[1] == m for x in rows) for m in MODE_OF_DEGREE.values()}
    out["modes_read"] = {m: sum(x[3][1] == m for x in rows) for m in MODE_OF_DEGREE.values()}
    return out


def bench_sheet_music(n_generated: int = 30, n_corpus: int = 150, seed: int = 0) -> dict:
    """MusicXML read back: the share of pieces whose sheet music holds the notes of their MIDI
    (onset and length to a 96th of a quarter, pitch) — folk tunes generated with seeds 0… and folk
    corpus pieces of the train split — with the quantizer's grid chosen per piece, and with
    music21's default grid (sixteenths and eighth triplets) as before 2026-12-08."""
    import tunesmith
    import tunesmith.music.convert as conv
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.io import load_score, save_musicxml

    def notes(sc):
        tpq = sc.music.tpq
        return sorted((round(n.time / tpq * 96), n.pitch, round(n.duration / tpq * 96))
                      for t in sc.music.tracks for n in t.notes)

    model = tunesmith.load_model("folk")
    generated = [model.generate(seed=k).score for k in range(n_generated)]
    ds = open_dataset("folk", progress=False)
    train = ds.split("train")
    rng = np.random.default_rng(seed)
    corpus = [ds.load(train[int(k)]) for k in rng.choice(len(train), n_corpus, replace=False)]
    out = {}
    shipped = conv.NOTATION_GRIDS
    with tempfile.TemporaryDirectory() as tmp:
        for label, grids in (("chosen_grid", shipped), ("default_grid", shipped[:1])):
            conv.NOTATION_GRIDS = grids
            try:
                for name, pieces in (("generated_folk", generated), ("folk_corpus", corpus)):
                    same = [notes(load_score(save_musicxml(sc, Path(tmp) / "x.musicxml"))) == notes(sc) for sc in pieces]
                    out.setdefault(name, {"pieces": len(pieces)})[label] = round(float(np.mean(same)), 4)
            finally:
                conv.NOTATION_GRIDS = shipped
    return out


def _unpadded_midi(s, path: Path) -> tuple[float, int, int] | None:
    """Write score ``s`` as a MIDI file holds a piece with an upbeat — its first note at time 0, its
    time signature from there — and return (its upbeat in quarters, the time signature); None where
    it has more than one time signature or an upbeat of no whole number of eighths."""
    from tunesmith.music.meter import from_first_note

    m = s.music
    sigs = {(t.numerator, t.denominator) for t in m.time_signatures}
    rows = [t.notes.numpy() for t in m.tracks if len(t.notes)]
    if len(sigs) != 1 or not rows:
        return None
    num, den = sigs.pop()
    bar = num * 4 * m.tpq // den
    first = int(min(int(r["time"].min()) for r in rows))
    upbeat = ((bar - first % bar) % bar) / m.tpq
    if min(upbeat, bar / m.tpq - upbeat) < 1 / 48:  # a tick or two after the bar line (a reader's rounding): none
        upbeat = 0.0
    if abs(upbeat * 2 - round(upbeat * 2)) > 1e-3:
        return None
    upbeat = round(upbeat * 2) / 2
    path.write_bytes(bytes(from_first_note(m).dumps_midi()))
    return upbeat, num, den


def bench_tuning(n_pieces: int, seed: int = 0, cents=(0, 25, -25, 40, -40)) -> dict:
    """Recordings tuned off A440: held-out chorales and folk tunes rendered at 100 qpm on six
    instruments with the synthesizer's pitch bend on every channel (the whole performance sharp
    or flat by so many cents, as a choir, a singer or an old instrument may be), transcribed with
    the recording retuned to A440 first (as ``transcribe`` does) and heard as it is
    (``retune=False``). Note F1: onset within 50 ms, pitch the score's nearest semitone.
    And how far off the tuning is read."""
    import mir_eval
    import symusic
    from tqdm import tqdm

    from tunesmith.evaluate.metrics import extract_notes
    from tunesmith.music.audio import RETUNE_MIN_CENTS, basic_pitch_notes, recording_tuning
    from tunesmith.music.render import render_wav

    rng = np.random.default_rng(20_000 + seed)
    pieces = held_out_pieces(rng, n_pieces // 2)
    programs = {**AUDIO_PROGRAMS, "choir": 52}
    import librosa

    from tunesmith.mir.audio import HOP, audio_key
    from tunesmith.mir.keys import find_key

    f1 = {(c, r): [] for c in cents for r in (True, False)}
    read = {c: [] for c in cents}
    key_ok = {(c, r): [] for c in cents for r in (True, False)}  # chroma key = the score's key (our tuning; librosa's)
    with tempfile.TemporaryDirectory() as tmp:
        for k, s0 in enumerate(tqdm(pieces, desc="tuning", leave=False)):
            prog = list(programs.values())[k % len(programs)]
            for c in cents:
                s = s0.copy()
                s.music.tempos.clear()
                s.music.tempos.append(symusic.Tempo(0, 100.0))
                for tr in s.music.tracks:
                    tr.program = prog
                    tr.pitch_bends.append(symusic.PitchBend(0, int(round(c / 200 * 8192))))  # bend range ±2 semitones
                wav = Path(tmp) / f"p{k}_{c}.wav"
                render_wav(s, wav, sample_rate=22050)
                ref = extract_notes(s)
                sec = 60 / 100 / ref.tpq
                ri = np.c_[ref.start * sec, np.maximum(ref.end * sec, ref.start * sec + 0.01)]
                rp = 440 * 2 ** ((ref.pitch + round(c / 100) - 69) / 12)
                read[c].append(recording_tuning(wav))
                y, sr = librosa.load(str(wav), sr=22050)
                truth = find_key(ref).key
                for r, tuning in ((True, read[c][-1] / 100), (False, None)):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=HOP, tuning=tuning)
                    key_ok[(c, r)].append(audio_key(chroma)[0] == truth)
                for r in (True, False):
                    notes = basic_pitch_notes(wav, retune=r)
                    if not notes:
                        f1[(c, r)].append(0.0)
                        continue
                    ei = np.array([[a, b] for a, b, _, _ in notes])
                    ep = 440 * 2 ** ((np.array([q for _, _, q, _ in notes]) - 69) / 12)
                    f1[(c, r)].append(float(mir_eval.transcription.precision_recall_f1_overlap(
                        ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)[2]))
                wav.unlink()
    return {"pieces": len(pieces), "instruments": list(programs), "retune_above_cents": RETUNE_MIN_CENTS,
            "rows": [{"cents": c, "f1_retuned": round(float(np.mean(f1[(c, True)])), 4),
                      "f1_as_heard": round(float(np.mean(f1[(c, False)])), 4),
                      "tuning_read_mean": round(float(np.mean(read[c])), 1),
                      "chroma_key_right": round(float(np.mean(key_ok[(c, True)])), 3),
                      "chroma_key_right_librosa_tuning": round(float(np.mean(key_ok[(c, False)])), 3),
                      "tuning_read_within_10_cents": round(float(np.mean(np.abs(np.array(read[c]) - c) <= 10)), 3)}
                     for c in cents]}


FLUID_SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian's fluid-soundfont-gm (make bench installs it)
CONDITIONS = ("as rendered", "another SoundFont", "room reverb", "pink noise", "MP3")


def _room(y: np.ndarray, sr: int, rng, rt60: float = 1.5) -> np.ndarray:
    """``y`` in a reverberant room: convolved with an exponentially decaying noise tail (60 dB down
    after ``rt60`` s, the usual synthetic room response — no recorded impulse response ships here),
    mixed at 0.7 of the dry signal's loudness and peak-normalised."""
    from scipy.signal import fftconvolve

    t = np.arange(int(sr * rt60 * 1.2)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    ir[0] = 0.0
    wet = fftconvolve(y, ir / np.sqrt((ir ** 2).sum()))
    out = np.r_[y, np.zeros(len(wet) - len(y))] + 0.7 * wet * np.sqrt((y ** 2).mean() / max((wet[:len(y)] ** 2).mean(), 1e-12))
    return out / np.abs(out).max() * 0.9


def _pink_noise(y: np.ndarray, rng, snr_db: float = 20.0) -> np.ndarray:
    """``y`` with pink (1/f) noise added at ``snr_db`` below its mean power, peak-normalised."""
    w = np.fft.rfft(rng.standard_normal(len(y) + 1))
    pink = np.fft.irfft(w / np.sqrt(np.arange(1, len(w) + 1)))[:len(y)]
    out = y + pink * np.sqrt((y ** 2).mean() / (pink ** 2).mean()) * 10 ** (-snr_db / 20)
    return out / np.abs(out).max() * 0.9


def _degraded(render, condition: str, base: Path, rng) -> Path | None:
    """The recording ``render(path, soundfont=…)`` makes, under ``condition`` (one of
    :data:`CONDITIONS`); None for another SoundFont where none is installed."""
    import soundfile as sf

    if condition == "another SoundFont":
        return render(base.with_name(base.stem + "-fluid.wav"), soundfont=FLUID_SF2) if FLUID_SF2.exists() else None
    wav = render(base, soundfont=None) if not base.exists() else base
    if condition == "as rendered":
        return wav
    y, sr = sf.read(wav)
    if condition == "MP3":  # libsndfile's MP3 encoder (LAME), its default settings
        out = base.with_name(base.stem + "-mp3.mp3")
        sf.write(out, y, sr, format="MP3")
        return out
    out = base.with_name(base.stem + "-" + condition.replace(" ", "-") + ".wav")
    sf.write(out, _room(y, sr, rng) if condition == "room reverb" else _pink_noise(y, rng), sr, subtype="FLOAT")
    return out


def bench_robust(n_pieces: int, n_queries: int, seed: int = 0) -> dict:
    """The audio figures on recordings that are not the benchmark's clean renders: rendered with
    another SoundFont (FluidR3_GM: other samples of every instrument), in a reverberant room
    (RT60 1.5 s), with pink noise 20 dB below the music, and through an MP3 encoder. Held-out
    chorales and folk tunes on the audio table's five instruments at 70–140 qpm: note F1 (onsets
    refined, and basic-pitch's own), tempo within 4 %, key from chroma = the score's key; and
    recorded search queries (2–4-bar snippets altered as the search table's, played on piano,
    violin, flute or guitar) under the same conditions: top-1, top-10."""
    from functools import partial

    import mir_eval
    import symusic
    from tqdm import tqdm

    from tunesmith.evaluate.metrics import extract_notes
    from tunesmith.mir.audio import analyze_audio
    from tunesmith.mir.keys import find_key
    from tunesmith.mir.search import melody_of
    from tunesmith.music.audio import basic_pitch_output, refine_onsets
    from tunesmith.music.io import load_score
    from tunesmith.music.render import render_wav

    rng = np.random.default_rng(30_000 + seed)
    pieces = held_out_pieces(rng, n_pieces // 2)
    programs = AUDIO_PROGRAMS
    rows = []

    def f1(ri, rp, starts, events, scale):
        if not len(events):
            return 0.0
        ei = np.array([[float(a) * scale, max(float(e[1]), float(a) + 0.01) * scale] for a, e in zip(starts, events)])
        ep = 440 * 2 ** ((np.array([int(e[2]) for e in events]) - 69) / 12)
        return float(mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05,
                                                                        offset_ratio=None)[2])

    with tempfile.TemporaryDirectory() as tmp:
        for k, s0 in enumerate(tqdm(pieces, desc="robust: pieces", leave=False)):
            inst = list(programs)[k % len(programs)]
            qpm = float(rng.uniform(70, 140))
            s = s0.copy()
            s.music.tempos.clear()
            s.music.tempos.append(symusic.Tempo(0, qpm))
            for tr in s.music.tracks:
                tr.program = programs[inst]
            ref = s.music.to("second")
            ri = np.array([[n.time, n.time + n.duration] for t in ref.tracks for n in t.notes])
            rp = np.array([440 * 2 ** ((n.pitch - 69) / 12) for t in ref.tracks for n in t.notes])
            truth = find_key(extract_notes(s)).key
            noise = np.random.default_rng([seed, k])
            for c in CONDITIONS:
                wav = _degraded(partial(render_wav, s, sample_rate=22050), c, Path(tmp) / f"p{k}.wav", noise)
                if wav is None:
                    continue
                out, events, scale = basic_pitch_output(wav)
                a = analyze_audio(wav, pitch_track=False)  # its transcription is the one above (kept per file)
                rows.append({"condition": c, "instrument": inst,
                             "f1": f1(ri, rp, refine_onsets(out, events), events, scale),
                             "f1_raw": f1(ri, rp, [e[0] for e in events], events, scale),
                             "tempo_ok": abs(a.tempo_bpm - qpm) / qpm <= 0.04, "key_ok": a.key == truth})
            for f in Path(tmp).glob(f"p{k}*"):
                f.unlink()
        bench_home = Path(tempfile.mkdtemp(prefix="tunesmith-robust-bench-"))
        try:
            idx = _fresh_index(bench_home / "index")[0]
            ranks = {c: [] for c in CONDITIONS}
            qrng = np.random.default_rng(40_000 + seed)
            for qn in tqdm(range(n_queries), desc="robust: queries", leave=False):
                q = _altered_snippet(idx, qrng)
                if q is None:
                    continue
                i, _, _, _, _, _, p, t, tempo = q
                prog = int(qrng.choice([0, 40, 73, 24]))
                noise = np.random.default_rng([seed, 1_000_000 + qn])
                for c in CONDITIONS:
                    wav = _degraded(partial(_render_query, p, t, tempo, prog), c, Path(tmp) / f"q{qn}.wav", noise)
                    if wav is None:
                        continue
                    qmel = melody_of(load_score(wav))
                    hits = idx.search(qmel, top=10) if len(qmel.pitches) >= 3 else []
                    ranks[c].append(_source_rank(idx, hits, i))
                for f in Path(tmp).glob(f"q{qn}*"):
                    f.unlink()
        finally:
            shutil.rmtree(bench_home)

    def share(c, key):
        r = [x[key] for x in rows if x["condition"] == c]
        return round(float(np.mean(r)), 4) if r else None

    return {"pieces": len(pieces), "queries": len(ranks["as rendered"]), "instruments": list(programs),
            "soundfont_other": FLUID_SF2.name if FLUID_SF2.exists() else None,
            "rows": [{"condition": c, "f1": share(c, "f1"), "f1_basic_pitch_onsets": share(c, "f1_raw"),
                      "f1_by_instrument": {i: round(float(np.mean([x["f1"] for x in rows if x["condition"] == c
                                                                  and x["instrument"] == i])), 3)
                                           for i in programs if any(x["condition"] == c and x["instrument"] == i
                                                                    for x in rows)},
                      "tempo_within_4pct": share(c, "tempo_ok"), "key_from_chroma_right": share(c, "key_ok"),
                      "search_top1": round(float(np.mean(np.array(ranks[c]) <= 1)), 4) if ranks[c] else None,
                      "search_top10": round(float(np.mean(np.array(ranks[c]) <= 10)), 4) if ranks[c] else None}
                     for c in CONDITIONS]}


def bench_pickup(n_pieces: int, n_queries: int, seed: int = 0) -> dict:
    """The upbeat a MIDI file's reader places (``music.meter.place_upbeat``) on held-out pieces of
    the bundled corpora written as MIDI writes them (first note at time 0); and melody search with
    bar ranges of such files of chorales and folk tunes, with and without the upbeat placed."""
    import symusic
    from tqdm import tqdm

    from tunesmith.mir.search import SearchIndex, query_melody
    from tunesmith.music.convert import fill_meta_from_music
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.io import load_score
    from tunesmith.music.meter import estimated_upbeat
    from tunesmith.music.score import Meta, Score

    rng = np.random.default_rng(2000 + seed)
    rows, search_rows = [], []
    idx = SearchIndex.load()
    corpora = ("bach-chorales", "folk", "mozart", "beethoven", "monteverdi", "palestrina")
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "piece.mid"
        for corpus in corpora:
            ds = open_dataset(corpus, progress=False)
            held = [e for e in ds.entries if e["split"] in ("valid", "test")]
            pick = rng.choice(len(held), min(len(held), n_pieces), replace=False)
            for k in tqdm(pick, desc=f"upbeat ({corpus})", leave=False):
                e = held[int(k)]
                made = _unpadded_midi(ds.load(e), mid)
                if made is None:
                    continue
                truth, num, den = made
                try:
                    read = load_score(mid)
                except Exception:  # noqa: BLE001 - a piece the MIDI round trip cannot hold is left out
                    continue
                found = estimated_upbeat(read) or 0.0
                rows.append({"corpus": corpus, "truth": truth, "found": found, "ts": f"{num}/{den}"})
                if corpus not in ("bach-chorales", "folk") or truth == 0 or len(search_rows) >= n_queries:
                    continue
                # a bar range of the file, as its bars read with and without the upbeat placed
                true = e.get("hash") or e["id"]
                if true not in idx.position:
                    continue
                raw = symusic.Score(str(mid))
                before = Score(raw, Meta(title="q", source=str(mid)))
                fill_meta_from_music(before)
                n_bars = int(raw.end() // (num * 4 * raw.tpq // den))
                nb = int(rng.integers(2, 5))
                if n_bars <= nb + 1:
                    continue
                b0 = int(rng.integers(1, n_bars - nb + 1))
                ranks = {}
                for label, score in (("before", before), ("after", read)):
                    try:
                        q = query_melody(score, bars=(b0, b0 + nb - 1))
                        hits = idx.search(q, top=10)
                    except Exception:  # noqa: BLE001 - too few notes in the bars: no rank
                        hits = []
                    ranks[label] = next((h.rank for h in hits if h.piece_id == true), 1_000)
                search_rows.append({"corpus": corpus, **ranks})

    def share(sel, f):
        return round(float(np.mean([f(r) for r in sel])), 4) if sel else None

    out = {"pieces": len(rows)}
    for label, sel in (("all", rows), *((c, [r for r in rows if r["corpus"] == c]) for c in corpora)):
        up = [r for r in sel if r["truth"] > 0]
        none = [r for r in sel if r["truth"] == 0]
        out[label] = {"n": len(sel), "with_upbeat": len(up),
                      "right": share(sel, lambda r: abs(r["found"] - r["truth"]) < 1e-6),
                      "upbeat_found": share(up, lambda r: abs(r["found"] - r["truth"]) < 1e-6),
                      "no_upbeat_left_alone": share(none, lambda r: r["found"] == 0),
                      "right_before": share(sel, lambda r: r["truth"] == 0)}
    out["search"] = {"queries": len(search_rows),
                     **{f"{k}_{w}": share(search_rows, lambda r, w=w, n=n: r[w] <= n)
                        for w in ("before", "after") for k, n in (("top1", 1), ("top10", 10))}}
    return out


CONTINUE_PROGRAMS = {"flute": 73, "violin": 40, "piano": 0, "guitar": 24}


def _line_stats(notes: list[tuple[int, int, int]], tpq: int, bar_ticks: int, scale: set[int]) -> dict:
    """Of (onset, pitch, duration) notes: notes per bar, the share of onsets holding two or more
    notes, of notes sounding past the next onset, of pitches in ``scale``, and the mean leap."""
    if not notes:
        return {"notes_per_bar": 0.0, "chord_onsets": 0.0, "ringing": 0.0, "in_key": 0.0, "mean_leap": 0.0}
    notes = sorted(notes)
    t = np.array([n[0] for n in notes])
    p = np.array([n[1] for n in notes])
    e = t + np.array([n[2] for n in notes])
    onsets, counts = np.unique(t, return_counts=True)
    nxt = np.array([onsets[onsets > x][0] if (onsets > x).any() else np.iinfo(np.int64).max for x in t])
    bars = max(1.0, (t.max() - t.min()) / bar_ticks + 1)
    return {"notes_per_bar": float(len(notes) / bars), "chord_onsets": float((counts > 1).mean()),
            "ringing": float((e > nxt).mean()), "in_key": float(np.isin(p % 12, list(scale)).mean()),
            "mean_leap": float(np.abs(np.diff(p)).mean()) if len(p) > 1 else 0.0}


def bench_continue(n_pieces: int, seed: int = 0) -> dict:
    """``generate --model folk --primer RECORDING``: the first 8 bars of held-out folk tunes, played
    on flute, violin, piano or guitar at 70–140 qpm, transcribed and continued by 8 bars; beside
    the same tunes' first 8 bars given as scores (on the same instrument), and the tunes' own bars 9–16. The continuation is
    the notes begun after the primer's last onset."""
    import symusic
    from tqdm import tqdm

    from tunesmith.generate.api import load_model
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.io import load_score
    from tunesmith.music.keys import estimate_key, scale_pitch_classes, score_key
    from tunesmith.music.render import render_wav

    rng = np.random.default_rng(seed)
    ds = open_dataset("folk", progress=False)
    held = [e for e in ds.entries if e["split"] in ("valid", "test")]
    mm = load_model("folk")
    rows: dict[str, list] = {"recorded": [], "score": [], "real": []}
    secs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in tqdm(rng.permutation(len(held)), desc="continue", leave=False):
            if len(rows["real"]) >= n_pieces:
                break
            s = ds.load(held[int(k)])
            if len(s.music.tracks) != 1 or not len(s.music.time_signatures):
                continue
            bar = s.music.tpq * 4 * s.music.time_signatures[0].numerator // s.music.time_signatures[0].denominator
            if s.music.end() < 16 * bar:
                continue
            head = s.copy()
            head.music = s.music.clip(0, 8 * bar, clip_end=True)
            true_tonic, true_mode = score_key(head)
            scale = scale_pitch_classes(true_tonic, true_mode)
            real = [(n.time, n.pitch, n.duration) for n in s.music.tracks[0].notes if 8 * bar <= n.time < 16 * bar]
            first = [(n.time, n.pitch, n.duration) for n in s.music.tracks[0].notes if n.time < 8 * bar]
            rows["real"].append({**_line_stats(real, s.music.tpq, bar, scale),
                                 "density_ratio": len(real) / max(1, len(first))})
            inst = list(CONTINUE_PROGRAMS)[len(rows["real"]) % len(CONTINUE_PROGRAMS)]
            qpm = float(rng.uniform(70, 140))
            played = head.copy()
            played.music.tempos.clear()
            played.music.tempos.append(symusic.Tempo(0, qpm))
            played.music.tracks[0].program = CONTINUE_PROGRAMS[inst]
            wav = Path(tmp) / f"p{k}.wav"
            render_wav(played, wav, sample_rate=22050)
            for kind, primer in (("recorded", load_score(wav)), ("score", played)):
                t0 = time.perf_counter()
                g = mm.generate(primer=primer, bars=8, seed=int(k))
                secs.append(time.perf_counter() - t0)
                m = g.score.music
                cut = max(n.time for tr in primer.music.tracks for n in tr.notes)
                gbar = m.tpq * 4 * m.time_signatures[0].numerator // m.time_signatures[0].denominator \
                    if len(m.time_signatures) else 4 * m.tpq
                notes = [(n.time, n.pitch, n.duration) for tr in m.tracks for n in tr.notes
                         if n.time > cut * m.tpq / primer.music.tpq]
                # notes a bar against the primer's as read (a recording read at twice the tempo has
                # half as many notes a bar in its primer too)
                pb = primer.music.tpq * 4 * primer.music.time_signatures[0].numerator // \
                    primer.music.time_signatures[0].denominator if len(primer.music.time_signatures) else 4 * primer.music.tpq
                heard = [(n.time, n.pitch, n.duration) for tr in primer.music.tracks for n in tr.notes]
                st = _line_stats(notes, m.tpq, gbar, scale)
                ratio = st["notes_per_bar"] / max(1e-9, _line_stats(heard, primer.music.tpq, pb, scale)["notes_per_bar"])
                # the primer in the output once: its notes against the output's notes up to its last onset
                # (a single-line model's primer is its melody, one note an onset)
                kept = sum(1 for tr in m.tracks for n in tr.notes if n.time <= cut * m.tpq / primer.music.tpq)
                onsets = len({n.time for tr in primer.music.tracks for n in tr.notes})
                # the tonic the continuation is held to (the tune's end, its scale): the primer's key as
                # generation reads it, against the key the tune states; and Krumhansl–Schmuckler on
                # the same notes, as generation read a primer that states no key before 2026-12-08
                a = np.array([(n.pitch, n.duration) for tr in primer.music.tracks for n in tr.notes])
                rows[kind].append({**st, "density_ratio": ratio, "instrument": inst, "primer_kept": kept / max(1, onsets),
                                   "tonic_right": float(g.report.get("tonic") == true_tonic),
                                   "tonic_right_krumhansl": float(estimate_key(a[:, 0], a[:, 1])[0] == true_tonic)})
    out = {"pieces": len(rows["real"]), "seconds_per_continuation": round(float(np.median(secs)), 2)}
    for kind, r in rows.items():
        out[kind] = {f: round(float(np.mean([x[f] for x in r])), 3)
                     for f in ("notes_per_bar", "density_ratio", "chord_onsets", "ringing", "in_key", "mean_leap",
                               "primer_kept", "tonic_right", "tonic_right_krumhansl") if f in r[0]}
    out["recorded"]["notes_per_bar_by_instrument"] = {
        i: round(float(np.mean([x["notes_per_bar"] for x in rows["recorded"] if x["instrument"] == i])), 2)
        for i in CONTINUE_PROGRAMS if any(x["instrument"] == i for x in rows["recorded"])}
    return out


def bench_classify() -> dict:
    """Cross-validated accuracy and macro-F1 of each task's classifier and its baselines
    (the same procedure as ``tunesmith classify train``), and prediction time per piece."""
    from tunesmith.mir import classify as C
    from tunesmith.music.dataset import open_dataset

    out = {}
    for name in C.TASKS:
        t0 = time.perf_counter()
        table = C.task_table(C.TASKS[name], progress=False)
        rep = C.cross_validate(table, progress=False)
        rep.pop("confusion")
        rep["seconds"] = round(time.perf_counter() - t0, 1)
        # the same folds with the training rows the classifiers had before 2026-12-08: the pieces'
        # excerpts alone, no short crops (what a phrase of four or eight bars was judged by)
        without = C.cross_validate(table, progress=False, short_crops=False)
        rep["without_short_crops"] = {k: without[k] for k in ("model", "calibration", "short_excerpts")}
        out[name] = rep
    clf = C.load_classifier("composer")
    ds = open_dataset("bach-chorales", progress=False)
    scores = [ds.load(e) for e in ds.split("test")[:40]]
    t0 = time.perf_counter()
    for s in scores:
        clf.predict_piece(s)
    out["ms_per_chorale"] = round(1000 * (time.perf_counter() - t0) / len(scores), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="key,chords,search,audio,meter,pickup,tuning,robust,classify,continue,notation,"
                    "sheetmusic,tunekey")
    ap.add_argument("--pickup-pieces", type=int, default=2000, help="held-out pieces per corpus for the upbeat (at most)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--audio-queries", type=int, default=200)
    ap.add_argument("--audio-pieces", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="which draw of queries (search) and pieces (audio); the "
                    "table's is 0")
    ap.add_argument("--out", type=Path, default=OUT, help="results file (default: the table's, %(default)s)")
    a = ap.parse_args(argv)
    out = a.out
    res = json.loads(out.read_text()) if out.exists() else {}
    for part in ("key", "chords", "search", "audio", "meter", "pickup", "tuning", "robust", "classify", "continue", "notation"):  # the parts kept from an earlier run keep its date
        if isinstance(res.get(part), dict) and "date" in res:
            res[part].setdefault("date", res["date"])
    res["machine"] = f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}"
    res["date"] = date.today().isoformat()
    for part in a.only.split(","):
        t0 = time.perf_counter()
        if part == "key":
            res["key"] = bench_key()
        elif part == "search":
            res["search"] = bench_search(a.queries, a.audio_queries, a.seed)
        elif part == "audio":
            res["audio"] = bench_audio(a.audio_pieces, a.seed)
        elif part == "meter":
            res["meter"] = bench_meter(a.audio_pieces, a.seed)
        elif part == "pickup":
            res["pickup"] = bench_pickup(a.pickup_pieces, a.queries // 4, a.seed)
        elif part == "tuning":
            res["tuning"] = bench_tuning(a.audio_pieces // 2, a.seed)
        elif part == "robust":
            res["robust"] = bench_robust(a.audio_pieces // 2, a.audio_queries // 2, a.seed)
        elif part == "classify":
            res["classify"] = bench_classify()
        elif part == "continue":
            res["continue"] = bench_continue(a.audio_pieces // 2, a.seed)
        elif part == "notation":
            res["notation"] = bench_notation(a.audio_pieces // 2, a.seed)
        elif part == "sheetmusic":
            res["sheetmusic"] = bench_sheet_music(seed=a.seed)
        elif part == "tunekey":
            res["tunekey"] = bench_tune_key()
        elif part == "chords":
            res["chords"] = bench_chords()
        else:
            print(f"unknown part {part}", file=sys.stderr)
            return 2
        res[part]["bench_seconds"] = round(time.perf_counter() - t0, 1)
        res[part]["date"] = res["date"]
        res[part]["load_average_after"] = round(__import__("os").getloadavg()[0], 2)  # how busy the machine was
        res[part]["seed"] = a.seed
        print(part, json.dumps(res[part]))
        out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
