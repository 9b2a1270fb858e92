"""Training the conditional WaveGAN on a rendered note data set (WGAN-GP).

The run folder is laid out as for the other families (``last/``, ``best/``,
``metrics.csv``/``.json``, ``curves.png``, ``summary.json``) plus
``samples/epoch-NNN.png``: spectrograms of fixed-noise samples after each epoch.
Batches come from a generator seeded by (seed, step), so ``--resume`` continues an
interrupted run exactly.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from tunesmith import __version__
from tunesmith.audio.dataset import NoteData, dataset_info, load_split
from tunesmith.audio.wavegan import WaveGAN, WaveGANConfig, wave_gradient_penalty
from tunesmith.errors import OptionError, TunesmithError
from tunesmith.train.checkpoint import load_trainer, load_weights, read_config, write_checkpoint


@dataclass
class WaveTrainConfig:
    epochs: int = 20
    steps_per_epoch: int = 50
    batch_size: int = 32
    lr: float = 1e-4
    n_critic: int = 5
    gp_weight: float = 10.0
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_every: int = 25
    seed: int = 0

    def check(self) -> None:
        for name, v in (("--epochs", self.epochs), ("--steps-per-epoch", self.steps_per_epoch),
                        ("--batch-size", self.batch_size), ("--n-critic", self.n_critic),
                        ("--checkpoint-every", self.checkpoint_every)):
            if v < 1:
                raise OptionError(name, f"must be at least 1, got {v}")
        if not self.lr > 0:
            raise OptionError("--lr", f"must be positive, got {self.lr}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise OptionError("--max-minutes", f"must be positive, got {self.max_minutes}")


def build_wavegan(cfg: dict) -> WaveGAN:
    names = {f.name for f in fields(WaveGANConfig)}
    return WaveGAN(WaveGANConfig(**{k: v for k, v in cfg.items() if k in names}))


def conditioning(data_path: str | Path) -> dict:
    """The labels a model trained on this data set is conditioned on."""
    info = dataset_info(data_path)
    p = info["params"]
    return {"pitch_lo": p["pitch_lo"], "n_pitches": p["pitch_hi"] - p["pitch_lo"] + 1,
            "programs": info["programs"], "n_instruments": len(info["programs"]),
            "length": p["length"], "sample_rate": p["sample_rate"]}


def _labels(data: NoteData, cond: dict) -> tuple[torch.Tensor, torch.Tensor]:
    prog_index = {p: i for i, p in enumerate(cond["programs"])}
    return (torch.from_numpy(data.pitch - cond["pitch_lo"]).long(),
            torch.tensor([prog_index[int(p)] for p in data.program], dtype=torch.long))


def train_wavegan(run_dir: str | Path, data_path: str | Path, model_overrides: dict, tc: WaveTrainConfig, *,
                  resume: bool = False, progress: bool = True) -> dict:
    from tqdm import tqdm

    from tunesmith.train.roll_trainer import _write_metrics

    run = Path(run_dir)
    state = {"epoch": 0, "step": 0, "history": [], "train_seconds": 0.0}
    if resume:
        if not (run / "last" / "config.json").is_file():
            raise TunesmithError(f"{run}: nothing to resume (no checkpoint in {run / 'last'})")
        saved = read_config(run / "last")
        cfg_d = saved["model"]
        keep = {k: getattr(tc, k) for k in ("epochs", "max_minutes", "max_steps")}
        tc = WaveTrainConfig(**{**saved["train"], **keep})
    else:
        if (run / "last" / "config.json").exists():
            raise TunesmithError(f"{run}: a run is already here; pass --resume to continue it or choose another --out")
        cond = conditioning(data_path)
        cfg_d = {**{k: cond[k] for k in ("pitch_lo", "n_pitches", "n_instruments", "length", "sample_rate")},
                 **model_overrides}
    cond = conditioning(data_path)
    train = load_split(data_path, "train")
    if not len(train.audio):
        raise TunesmithError(f"{data_path}: the training split is empty")
    if train.audio.shape[1] != cfg_d["length"]:
        raise OptionError("--data", f"clips are {train.audio.shape[1]} samples, the model makes {cfg_d['length']}")
    torch.manual_seed(tc.seed)
    model = build_wavegan(cfg_d)
    opt = torch.optim.Adam([{"params": model.D.parameters()}, {"params": model.G.parameters()}],
                           lr=tc.lr, betas=(0.5, 0.9))
    if resume:
        load_weights(model, run / "last")
        state.update(load_trainer(opt, run / "last"))
    meta = {"family": "wavegan", "model": asdict(model.cfg), "train": asdict(tc), "programs": cond["programs"],
            "data": {"path": str(data_path), "render": dataset_info(data_path)["render"]},
            "code_version": __version__, "n_params": model.n_params()}

    def save(name: str, with_trainer: bool) -> None:
        write_checkpoint(run / name, model, dict(meta, metrics={"step": state["step"], "epoch": state["epoch"]}),
                         optimizer=opt if with_trainer else None, trainer=state if with_trainer else None)

    run.mkdir(parents=True, exist_ok=True)
    x_all = torch.from_numpy(train.audio)
    yp, yi = _labels(train, cond)
    total = tc.epochs * tc.steps_per_epoch
    if tc.max_steps:
        total = min(total, tc.max_steps)
    bar = tqdm(total=total, initial=min(state["step"], total), desc="train wavegan", unit="step",
               disable=not progress, dynamic_ncols=True)
    t_start = time.perf_counter() - state["train_seconds"]
    crash_at = int(os.environ.get("TUNESMITH_CRASH_AT_STEP", "0"))
    stop = "epochs done"
    G, D = model.G, model.D
    while state["step"] < total:
        g = np.random.default_rng([tc.seed, state["step"]])
        tg = torch.Generator().manual_seed(int(g.integers(2**62)))
        for _ in range(tc.n_critic):
            idx = torch.from_numpy(g.integers(0, len(x_all), tc.batch_size))
            real, p, i = x_all[idx], yp[idx], yi[idx]
            z = torch.randn(tc.batch_size, model.cfg.z_dim, generator=tg)
            with torch.no_grad():
                fake = G(z, p, i)
            d_real, d_fake = D(real, p, i, tg).mean(), D(fake, p, i, tg).mean()
            gp = wave_gradient_penalty(D, real, fake, p, i, tg)
            d_loss = d_fake - d_real + tc.gp_weight * gp
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            opt.step()
        idx = torch.from_numpy(g.integers(0, len(x_all), tc.batch_size))
        z = torch.randn(tc.batch_size, model.cfg.z_dim, generator=tg)
        g_loss = -D(G(z, yp[idx], yi[idx]), yp[idx], yi[idx], tg).mean()
        opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for q in D.parameters():
            q.grad = None
        opt.step()
        state["step"] += 1
        logs = {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "wasserstein": (d_real - d_fake).item(),
                "gp": gp.item()}
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
        state["train_seconds"] = time.perf_counter() - t_start
        if crash_at and state["step"] == crash_at:
            os._exit(137)
        if state["step"] % tc.checkpoint_every == 0:
            save("last", True)
        timed_out = tc.max_minutes is not None and state["train_seconds"] > tc.max_minutes * 60
        if state["step"] % tc.steps_per_epoch == 0 or timed_out or state["step"] >= total:
            state["epoch"] = -(-state["step"] // tc.steps_per_epoch)
            row = {"epoch": state["epoch"], "step": state["step"], "seconds": round(state["train_seconds"], 1),
                   "seconds_per_step": round(state["train_seconds"] / max(1, state["step"]), 3),
                   **{k: round(v, 4) for k, v in logs.items()}}
            state["history"].append(row)
            _spectrogram_grid(model, cond, run / "samples" / f"epoch-{state['epoch']:03d}.png")
            save("best", False)  # a GAN has no held-out loss to select on: the latest epoch
            save("last", True)
            _write_metrics(run, state["history"])
            bar.write(f"epoch {state['epoch']}: " + ", ".join(f"{k} {v}" for k, v in row.items()
                                                              if k not in ("epoch", "step")))
            if timed_out:
                stop = "time limit"
                break
    bar.close()
    summary = {"family": "wavegan", "n_params": model.n_params(), "steps": state["step"], "epochs": state["epoch"],
               "seconds": round(state["train_seconds"], 1),
               "seconds_per_step": round(state["train_seconds"] / max(1, state["step"]), 3), "stop_reason": stop}
    (run / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def save_spectrograms(clips: np.ndarray, titles: list[str], path: Path, sample_rate: int) -> Path:
    """Log-magnitude spectrograms of clips side by side, as a PNG (atomic)."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(clips)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
    for ax, c, t in zip(axes.ravel(), clips, titles):
        s = librosa.amplitude_to_db(np.abs(librosa.stft(c.astype(np.float32), n_fft=512, hop_length=128)) + 1e-6,
                                    ref=1.0)
        ax.imshow(s, origin="lower", aspect="auto", vmin=-80, vmax=20, cmap="magma",
                  extent=[0, len(c) / sample_rate, 0, sample_rate / 2000])
        ax.set_title(t, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].set_ylabel("kHz", fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".part.png")
    fig.savefig(tmp, dpi=70)
    plt.close(fig)
    tmp.replace(path)
    return path


def _spectrogram_grid(model: WaveGAN, cond: dict, path: Path) -> None:
    n_inst = model.cfg.n_instruments
    pitches = [48, 60, 72, 84]
    pairs = [(p, i % n_inst) for i, p in enumerate(pitches)] + [(60, i) for i in range(n_inst)]
    pairs = [(p, i) for p, i in pairs if 0 <= p - model.cfg.pitch_lo < model.cfg.n_pitches][:8]
    z = torch.randn(len(pairs), model.cfg.z_dim, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        was = model.G.training
        model.G.eval()
        x = model.G(z, torch.tensor([p - model.cfg.pitch_lo for p, _ in pairs]), torch.tensor([i for _, i in pairs]))
        model.G.train(was)
    titles = [f"pitch {p}, program {cond['programs'][i]}" for p, i in pairs]
    save_spectrograms(x.numpy(), titles, path, model.cfg.sample_rate)
