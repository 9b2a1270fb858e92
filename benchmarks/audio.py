"""WaveGAN figures: seconds per training step, generation speed, and the evaluation of the
bundled notes-gan against real held-out clips (ceiling) and a WaveGAN at initialisation (floor).

    python benchmarks/audio.py

Writes benchmarks/results-audio.json (BENCHMARKS.md is rebuilt by benchmarks/run.py).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from tunesmith.audio.api import NotesGAN
    from tunesmith.audio.dataset import AudioDataParams, build, load_split
    from tunesmith.audio.evaluate import evaluate_generator
    from tunesmith.audio.train import build_wavegan
    from tunesmith.audio.wavegan import wave_gradient_penalty
    from tunesmith.cli_audio import load_classifier

    res: dict = {"threads": torch.get_num_threads()}
    data = Path(tempfile.mkdtemp(prefix="tunesmith-notes-")) / "notes"
    t0 = time.perf_counter()
    info = build(data, AudioDataParams(), progress=False)
    res["dataset_seconds"] = time.perf_counter() - t0
    res["dataset_clips"] = sum(info["counts"].values())
    gan = NotesGAN.load("notes-gan")
    cfg = gan.config["model"]
    # one training step as in `tunesmith audio train` (batch 32, 5 critic updates + 1 generator update)
    m = build_wavegan(cfg)
    opt = torch.optim.Adam(m.parameters(), 1e-4, betas=(0.5, 0.9))
    train = load_split(data, "train")
    x = torch.from_numpy(train.audio[:32])
    p = torch.from_numpy(train.pitch[:32] - cfg["pitch_lo"]).long()
    i = torch.zeros(32, dtype=torch.long)

    def step():
        for _ in range(5):
            with torch.no_grad():
                fake = m.G(torch.randn(32, 100), p, i)
            loss = m.D(fake, p, i).mean() - m.D(x, p, i).mean() + 10 * wave_gradient_penalty(m.D, x, fake, p, i)
            opt.zero_grad()
            loss.backward()
            opt.step()
        g = -m.D(m.G(torch.randn(32, 100), p, i), p, i).mean()
        opt.zero_grad()
        g.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(3):
        step()
    res["train_seconds_per_step"] = (time.perf_counter() - t0) / 3
    res["params"] = sum(q.numel() for q in m.parameters())
    res["width"] = cfg["d"]
    t0 = time.perf_counter()
    clips = gan.generate([60] * 64, "piano")
    dt = time.perf_counter() - t0
    res["generate_notes_per_s"] = len(clips) / dt
    res["generate_realtime_factor"] = len(clips) * clips.shape[1] / gan.sample_rate / dt
    clf = load_classifier("notes-classifier")
    from tunesmith.audio.evaluate import concat

    test = concat(load_split(data, "valid"), load_split(data, "test"))
    ev = evaluate_generator(gan.model.G, clf, train, test, gan.programs)
    torch.manual_seed(0)
    floor = evaluate_generator(build_wavegan(cfg).G, clf, train, test, gan.programs)
    res["eval"] = {"generated": ev["generated"], "real_heldout": ev["real"], "wavegan_at_init": floor["generated"]}
    res["training"] = json.loads((ROOT / "src/tunesmith/assets/models/notes-gan/config.json").read_text())["metrics"]
    for k, v in res.items():
        print(k, v)
    (ROOT / "benchmarks" / "results-audio.json").write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
