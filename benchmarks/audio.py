"""Note GAN figures: the bundled DDSP GAN (notes-gan) beside the classic WaveGAN baseline
(notes-wavegan), each beside the same architecture at initialisation (its floor) and
real training clips (the ceiling): pitch accuracy (the in-project classifier and
librosa's pYIN), family accuracy, inception score, Fréchet distance, NDB/k; seconds per
training step, generation speed, parameters, and how much z changes a note.

    python benchmarks/audio.py

Writes benchmarks/results-audio.json (BENCHMARKS.md is rebuilt by benchmarks/run.py).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("notes-gan", "notes-wavegan")


def step_seconds(gan, data, repeats: int = 3) -> float:
    """Seconds per training step with the batch size and settings the model was trained with."""
    from tunesmith.train.notes import (
        STEPS,
        WaveTrainConfig,
        _Batches,
        build_note_model,
        conditioning,
    )

    trained = gan.config.get("train", {})
    tc = WaveTrainConfig(**{k: trained[k] for k in ("batch_size", "lr", "n_critic") if k in trained})
    torch.manual_seed(0)
    m = build_note_model(gan.family, gan.config["model"])
    from tunesmith.music.notes import load_split

    step = STEPS[gan.family](m, tc, _Batches(load_split(data, "train"), conditioning(data)))
    g = np.random.default_rng(0)
    step(10**6, g, torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    for k in range(repeats):
        step(10**6, g, torch.Generator().manual_seed(k))
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    from tunesmith.evaluate.notes import (
        concat,
        evaluate_generator,
        evaluate_with_floor,
        save_comparison,
        z_variety,
    )
    from tunesmith.generate.notes import NotesGAN, load_classifier
    from tunesmith.music.notes import AudioDataParams, build, load_split

    res: dict = {"threads": torch.get_num_threads()}
    data = Path(tempfile.mkdtemp(prefix="tunesmith-notes-")) / "notes"
    t0 = time.perf_counter()
    info = build(data, AudioDataParams(), progress=False)
    res["dataset_seconds"] = time.perf_counter() - t0
    res["dataset_clips"] = sum(info["counts"].values())
    clf = load_classifier("notes-classifier")
    train = load_split(data, "train")
    test = concat(load_split(data, "valid"), load_split(data, "test"))
    res["models"] = {}
    for name in MODELS:
        gan = NotesGAN.load(name)
        r: dict = {"family": gan.family, "params": gan.model.n_params(),
                   "generator_params": sum(q.numel() for q in gan.model.G.parameters()),
                   "train_seconds_per_step": step_seconds(gan, data)}
        t0 = time.perf_counter()
        clips = gan.generate([60] * 64, "piano")
        dt = time.perf_counter() - t0
        r["generate_notes_per_s"] = len(clips) / dt
        r["generate_realtime_factor"] = len(clips) * clips.shape[1] / gan.sample_rate / dt
        ev = evaluate_with_floor(gan, clf, train, test, pyin=True)
        r["eval"] = {"generated": ev["generated"], "at_init": ev["at_init"]}
        res["real_heldout"] = ev["real"]
        r["z_variety"] = float(np.mean([z_variety(gan.model, p, i) for p in (48, 60, 72)
                                        for i in range(len(gan.programs))]))
        r["training"] = gan.config.get("metrics", {})
        r["card"] = {k: gan.config.get(k) for k in ("train",)}
        if name == "notes-gan":
            save_comparison(ev["fake_audio"], test, gan, ROOT / "benchmarks" / "notes-gan-vs-real.png")
            # the same figures for other latent draws: how much of a margin is luck
            r["seed_sweep"] = []
            for seed in (1, 2, 3):
                e = evaluate_generator(gan.model, clf, train, test, gan.programs, seed=seed, ceiling=False)["generated"]
                r["seed_sweep"].append({"seed": seed, **{k: e[k] for k in ("pitch_accuracy", "family_accuracy",
                                                                         "frechet_distance", "ndb_over_k")}})
        res["models"][name] = r
        print(name, json.dumps({k: v for k, v in r.items() if k != "card"}, default=float, indent=1))
    # how different two real notes of one instrument and pitch are (adjacent velocities): a scale for z_variety
    from tunesmith.models.ddsp import log_spectrum_distance

    d = []
    for prog in sorted(set(train.program.tolist())):
        for p in (48, 60, 72):
            rows = np.flatnonzero((train.program == prog) & (train.pitch == p))
            if len(rows) >= 2:
                x = torch.from_numpy(train.audio[rows])
                d.append(float(log_spectrum_distance(x[:-1], x[1:]).mean()))
    res["real_velocity_spread"] = float(np.mean(d)) if d else None
    print("real held-out ceiling", res["real_heldout"])
    (ROOT / "benchmarks" / "results-audio.json").write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
