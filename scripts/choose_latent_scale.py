"""Choose a DDSP GAN's sampling spread of z (its ``latent_scale``, the truncation trick)
on the *training* notes, never the held-out ones the benchmark scores.

For each scale of a grid, one note is generated per training clip (same pitch,
instrument and velocity) and scored against the training clips with the in-project
classifier (Fréchet distance, family accuracy) and for variety (mean log-spectral
distance between eight latents of one note). The rule: the largest scale whose
Fréchet distance is within 25% of the z = 0 note's (as varied as it can be while staying
about as close to real notes as the model's most typical note).

    python scripts/choose_latent_scale.py runs/notes-ddsp [--data DIR] [--write]

``--write`` stores the choice in the run's best/config.json (model.latent_scale).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    from tunesmith.evaluate.notes import NDB, generate_like, score_set, z_variety
    from tunesmith.generate.notes import NotesGAN, load_classifier
    from tunesmith.models.checkpoint import resolve_checkpoint
    from tunesmith.music.dataset import tunesmith_home
    from tunesmith.music.notes import load_split

    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data", default=str(tunesmith_home() / "audio" / "notes"))
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    gan = NotesGAN.load(a.run)
    clf = load_classifier("notes-classifier")
    train = load_split(a.data, "train")
    ndb = NDB(train.audio)
    real = clf.predict(train.audio)
    rows = []
    for s in GRID:
        gan.model.cfg.latent_scale = s
        fake = generate_like(gan.model, train, gan.programs, seed=0)
        r = score_set(clf, fake, train.pitch, train.family, real, ndb)
        var = float(np.mean([z_variety(gan.model, p, i) for p in (48, 60, 72) for i in range(len(gan.programs))]))
        rows.append({"latent_scale": s, "frechet_distance": r["frechet_distance"],
                     "family_accuracy": r["family_accuracy"], "ndb_over_k": r["ndb_over_k"], "z_variety": var})
        print(json.dumps(rows[-1]))
    base = rows[0]["frechet_distance"]
    chosen = max(r["latent_scale"] for r in rows if r["frechet_distance"] <= 1.25 * base)
    print(f"chosen latent_scale {chosen} (largest with FD within 25% of z = 0's {base:.1f})")
    out = {"rule": "largest scale whose training-split FD is within 25% of z = 0's", "grid": rows,
           "chosen": chosen}
    Path(a.run, "latent_scale.json").write_text(json.dumps(out, indent=1))
    if a.write:
        ckpt = resolve_checkpoint(a.run)
        cfg = json.loads((ckpt / "config.json").read_text())
        cfg["model"]["latent_scale"] = chosen
        cfg["latent_scale_choice"] = out
        (ckpt / "config.json").write_text(json.dumps(cfg, indent=1))
        print(f"wrote model.latent_scale = {chosen} into {ckpt / 'config.json'}")


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
