"""How the onset refiner (``assets/onset_refiner.safetensors``, music/audio.py
``refine_onsets``) was trained.

Data: 100 pieces of the *train* splits of bach-chorales and folk (50 each), rendered with
the SoundFont at 70–140 qpm, each on one of 22 General MIDI instruments with fast and slow
attacks (piano, harpsichord, vibraphone, organs, accordion, harmonica, guitars, violin,
cello, string ensembles, choir, brass, reeds, flutes), then transcribed by basic-pitch with
tunesmith's thresholds. Each transcribed note that lies within 300 ms after (or 60 ms
before) a score note of its pitch is an example: input its attack's activations
(:func:`~tunesmith.music.audio.onset_features`), target the time from its onset back to the
score note's. Model: scikit-learn's MLPRegressor (64, 32), early stopping. It is checked on
30 *other* train pieces on the benchmark's five instruments (the set of
``scripts/tune_transcription.py``); the benchmark (benchmarks/mir.py) uses held-out pieces.

    python scripts/train_onset_refiner.py [--write]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

PROGRAMS = (0, 1, 4, 6, 11, 19, 21, 22, 24, 25, 40, 42, 48, 49, 52, 56, 60, 65, 68, 71, 73, 74)
DEV_PROGRAMS = {"piano": 0, "strings": 48, "organ": 19, "flute": 73, "guitar": 24}


def renders(n_per_corpus: int, seed: int, programs) -> list:
    """[(instrument, basic-pitch output, note events, reference onsets, reference pitches)]."""
    import symusic

    from tunesmith.music.audio import basic_pitch_output
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.render import render_wav

    rng = np.random.default_rng(seed)
    pieces = []
    for corpus in ("bach-chorales", "folk"):
        ds = open_dataset(corpus, progress=False)
        train = ds.split("train")
        pieces += [ds.load(train[int(k)]) for k in rng.choice(len(train), n_per_corpus, replace=False)]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(pieces):
            prog = programs(k, rng)
            s = s.copy()
            s.music.tempos.clear()
            s.music.tempos.append(symusic.Tempo(0, float(rng.uniform(70, 140))))
            for t in s.music.tracks:
                t.program = prog
            wav = Path(tmp) / f"p{k}.wav"
            render_wav(s, wav, sample_rate=22050)
            mo, ev, _ = basic_pitch_output(wav, retune=False)  # tunesmith's thresholds, as transcribe uses them
            ref = s.music.to("second")
            ri = np.array([[n.time, n.time + n.duration] for t in ref.tracks for n in t.notes])
            rp = np.array([n.pitch for t in ref.tracks for n in t.notes])
            out.append((prog, {"note": mo["note"], "onset": mo["onset"]}, ev, ri, rp))
            print(f"rendered {k + 1}/{len(pieces)}", end="\r", flush=True)
    print()
    return out


def examples(data) -> tuple[np.ndarray, np.ndarray]:
    from tunesmith.music.audio import onset_features

    xs, ys = [], []
    for _, mo, ev, ri, rp in data:
        feats = onset_features(mo, ev)
        for e, x in zip(ev, feats):
            same = rp == e[2]
            if not same.any():
                continue
            d = ri[same, 0] - e[0]
            d = d[np.argmin(np.abs(d))]
            if -0.3 < d < 0.06:
                xs.append(x)
                ys.append(d)
    return np.array(xs), np.array(ys)


def note_f1(data, starts_of) -> tuple[float, dict]:
    import mir_eval

    by: dict[str, list[float]] = {}
    names = {v: k for k, v in DEV_PROGRAMS.items()}
    for prog, mo, ev, ri, rp in data:
        f = 0.0
        if ev:
            st = starts_of(mo, ev)
            ei = np.array([[s, max(float(e[1]), s + 0.01)] for s, e in zip(st, ev)])
            ep = np.array([440 * 2 ** ((e[2] - 69) / 12) for e in ev])
            f = mir_eval.transcription.precision_recall_f1_overlap(
                ri, 440 * 2 ** ((rp - 69) / 12), ei, ep, onset_tolerance=0.05, offset_ratio=None)[2]
        by.setdefault(names.get(prog, str(prog)), []).append(f)
    return (float(np.mean([x for v in by.values() for x in v])),
            {k: round(float(np.mean(v)), 3) for k, v in by.items()})


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # scikit-learn's OpenMP stalls beside a busy core
    from safetensors.numpy import save_file
    from sklearn.neural_network import MLPRegressor

    from tunesmith.music import audio

    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="write the weights and card into the package")
    a = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    train = renders(50, 23, lambda k, rng: int(rng.choice(PROGRAMS)))
    dev = renders(15, 11, lambda k, rng: list(DEV_PROGRAMS.values())[k % len(DEV_PROGRAMS)])
    x, y = examples(train)
    print(f"{len(y)} training notes; median lag {-np.median(y) * 1000:.0f} ms")
    mlp = MLPRegressor(hidden_layer_sizes=(64, 32), alpha=1e-3, max_iter=800, early_stopping=True,
                       random_state=0).fit(x, y)
    tensors = {}
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        tensors[f"w{i}"], tensors[f"b{i}"] = np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32)

    def raw(mo, ev):
        return np.array([float(e[0]) for e in ev])

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.safetensors"
        save_file(tensors, str(path))
        audio.REFINER_FILE = path
        audio._refiner.cache_clear()
        before, by_before = note_f1(dev, raw)
        after, by_after = note_f1(dev, audio.refine_onsets)
        if a.write:
            dest = Path(audio.__file__).resolve().parents[1] / "assets" / "onset_refiner.safetensors"
            save_file(tensors, str(dest))
    print(f"dev note F1 (30 other train pieces, 5 instruments): {before:.3f} {by_before} -> {after:.3f} {by_after}")
    if a.write:
        card = {"model": "MLPRegressor (64, 32), ReLU; input: 24+8 frames of basic-pitch's note and onset "
                "activations at the note's pitch; output: seconds from basic-pitch's onset to the note's",
                "data": "100 train-split pieces (50 bach-chorales, 50 folk) rendered with TimGM6mb.sf2 at "
                        "70-140 qpm on 22 GM programs " + str(list(PROGRAMS)),
                "examples": int(len(y)), "recipe": "python scripts/train_onset_refiner.py --write",
                "dev_note_f1": {"before": round(before, 3), "after": round(after, 3),
                                "by_instrument_before": by_before, "by_instrument_after": by_after},
                "caveat": "trained on one SoundFont's attacks; not measured on recordings"}
        dest.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
        print(f"wrote {dest}")


if __name__ == "__main__":
    main()
