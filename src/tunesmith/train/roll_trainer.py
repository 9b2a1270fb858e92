"""Training the piano-roll models (``cnn``: Coconet, ``gan``: the MuseGAN-style WGAN-GP).

Same run folder as the sequence models: ``last/`` (weights, optimizer, trainer state,
written atomically every ``checkpoint_every`` steps and at each epoch's end),
``best/``, ``metrics.csv``/``metrics.json``, ``curves.png``, ``summary.json``; the GAN
also writes ``samples/epoch-NNN.png``, a grid of fixed-noise samples after every epoch.
An interrupted run continues with ``--resume`` from its last checkpoint, and every
batch is drawn from a generator seeded by (seed, step), so the resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tunesmith import __version__
from tunesmith.errors import OptionError, TunesmithError
from tunesmith.fileio import write_json
from tunesmith.models import registry
from tunesmith.models.checkpoint import load_trainer, load_weights, read_config, write_checkpoint
from tunesmith.models.rollnets import (
    RollGAN,
    gan_roll_to_classes,
    gradient_penalty,
    random_masks,
    to_gan_roll,
)
from tunesmith.represent.voices import N_CLASSES, score_to_voices
from tunesmith.train.data import read_split_cache, write_split_cache
from tunesmith.train.trainer import fit_bar_to_budget

ROLL_FAMILIES = ("cnn", "gan")
REPRESENTATION = {"representation": "satb-16th", "steps_per_quarter": 4, "pitch_lo": 36, "n_classes": N_CLASSES}


@dataclass
class RollTrainConfig:
    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_every: int = 50
    augment_transpose: bool = True
    n_critic: int = 5
    gp_weight: float = 10.0
    seed: int = 0

    def check(self) -> None:
        for name, v in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                        ("--checkpoint-every", self.checkpoint_every), ("--steps-per-epoch", self.steps_per_epoch)):
            if v < 1:
                raise OptionError(name, f"must be at least 1, got {v}")
        if not self.lr > 0:
            raise OptionError("--lr", f"must be positive, got {self.lr}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise OptionError("--train-minutes", f"must be positive, got {self.max_minutes}")


def build_roll_model(family: str, cfg: dict | None = None):
    if family not in ("cnn", "gan"):
        raise OptionError("--model", f"unknown piano-roll family '{family}'")
    return registry.build(family, cfg or {})


# --------------------------------------------------------------------------- data


def voice_corpus(dataset, *, progress: bool = True) -> dict[str, list[np.ndarray]]:
    """The four-voice pieces of a prepared dataset as (4, T) class arrays per split,
    cached beside the dataset."""
    from tqdm import tqdm

    key = hashlib.sha256((json.dumps(REPRESENTATION, sort_keys=True) + dataset.manifest_hash).encode()).hexdigest()[:16]
    cache = Path(dataset.path) / f"voices-{key}.npz"
    out: dict[str, list[np.ndarray]] = {}
    if cache.is_file():
        return read_split_cache(cache, "voices")[0]
    for s in ("train", "valid", "test"):
        seqs = []
        entries = dataset.split(s)
        for e in tqdm(entries, desc=f"voices {dataset.name} {s}", disable=not progress or not entries,
                      dynamic_ncols=True):
            v = score_to_voices(dataset.load(e))
            if v is not None and v.shape[1] >= 16:
                seqs.append(v.astype(np.int8))
        out[s] = seqs
    if not out["train"]:
        raise TunesmithError(f"{dataset.path}: no four-voice pieces in the training split "
                             "(the piano-roll models need soprano, alto, tenor and bass tracks)")
    write_split_cache(cache, "voices", out, np.zeros((4, 0), np.int8))
    return out


def crop_batch(seqs: list[np.ndarray], crop: int, batch: int, g: np.random.Generator,
               transpose: bool) -> torch.Tensor:
    """``batch`` random beat-aligned crops of ``crop`` steps: (B, 4, crop) classes; pieces
    shorter than a crop are padded with rests. With ``transpose``, each crop is moved by
    a random interval in [−5, +6] that keeps it in range."""
    out = np.zeros((batch, 4, crop), np.int64)
    lengths = np.array([s.shape[1] for s in seqs])
    weights = lengths / lengths.sum()
    for b in range(batch):
        s = seqs[int(g.choice(len(seqs), p=weights))]
        T = s.shape[1]
        start = int(g.integers(0, max(1, (T - crop) // 4 + 1))) * 4 if T > crop else 0
        c = s[:, start : start + crop].astype(np.int64)
        if transpose:
            pitched = c[c > 0]
            if len(pitched):
                lo, hi = -min(5, int(pitched.min()) - 1), min(6, N_CLASSES - 1 - int(pitched.max()))
                k = int(g.integers(lo, hi + 1)) if hi >= lo else 0
                c = np.where(c > 0, c + k, 0)
        out[b, :, : c.shape[1]] = c
    return torch.from_numpy(out)


# --------------------------------------------------------------------------- the loop


def train_rolls(run_dir: str | Path, family: str, model_cfg: dict, data: dict[str, list[np.ndarray]],
                tc: RollTrainConfig, *, resume: bool = False, progress: bool = True,
                extra: dict | None = None) -> dict:
    """Train (or resume) Coconet or the piano-roll GAN; one process per run folder."""
    from tunesmith.train.trainer import run_lock

    with run_lock(Path(run_dir)):
        return _train_rolls(run_dir, family, model_cfg, data, tc, resume=resume, progress=progress, extra=extra)


def _train_rolls(run_dir, family, model_cfg, data, tc, *, resume, progress, extra) -> dict:
    from tqdm import tqdm

    run = Path(run_dir)
    state = {"epoch": 0, "step": 0, "history": [], "train_seconds": 0.0, "best_valid": float("inf")}
    if resume:
        last = run / "last"
        if not (last / "config.json").is_file():
            raise TunesmithError(f"{run}: nothing to resume (no checkpoint in {last})")
        saved = read_config(last)
        from tunesmith.train.trainer import check_same_data

        check_same_data(run, saved.get("dataset") or {}, (extra or {}).get("dataset") or {})
        if saved["family"] != family:
            from tunesmith.errors import OptionError

            raise OptionError("--family", f"the run in {run} is a {saved['family']} model, not {family}: resume it "
                              f"with --family {saved['family']}, or start a new run (another --out)")
        family, model_cfg = saved["family"], saved["model"]
        keep = {k: getattr(tc, k) for k in ("epochs", "max_minutes", "max_steps")}
        tc = RollTrainConfig(**{**saved["train"], **keep})
    elif (run / "last" / "config.json").exists():
        raise TunesmithError(f"{run}: a run is already here; pass --resume to continue it or choose another --out")
    torch.manual_seed(tc.seed)
    model = build_roll_model(family, model_cfg)
    model_cfg = asdict(model.cfg)
    if family == "gan":
        opt = torch.optim.Adam([{"params": model.D.parameters()}, {"params": model.G.parameters()}],
                               lr=tc.lr, betas=(0.5, 0.9))
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=1e-4)
    if resume:
        load_weights(model, run / "last")
        state.update(load_trainer(opt, run / "last"))
        if state.get("best_valid") is None:  # strict JSON keeps "no score yet" as null
            state["best_valid"] = float("inf")
    crop = model.cfg.crop if family == "cnn" else model.cfg.n_bars * model.cfg.steps_per_bar
    meta = {"family": family, "model": model_cfg, "train": asdict(tc), "representation": REPRESENTATION,
            "code_version": __version__, "n_params": model.n_params(), **(extra or {})}

    def save(name: str, with_trainer: bool) -> None:
        m = dict(meta, metrics={"step": state["step"], "epoch": state["epoch"], "best_valid": state["best_valid"]})
        write_checkpoint(run / name, model, m, optimizer=opt if with_trainer else None,
                         trainer=state if with_trainer else None)

    run.mkdir(parents=True, exist_ok=True)
    total = tc.epochs * tc.steps_per_epoch
    if tc.max_steps:
        total = min(total, tc.max_steps)
    bar = tqdm(total=total, initial=min(state["step"], total), desc=f"train {family}", unit="step",
               disable=not progress, dynamic_ncols=True)
    t_start = time.perf_counter() - state["train_seconds"]
    crash_at = int(os.environ.get("TUNESMITH_CRASH_AT_STEP", "0"))
    valid = data.get("valid") or data["train"]
    fixed = crop_batch(valid, crop, 32, np.random.default_rng(1234), transpose=False)
    fixed_mask = random_masks(32, 4, crop, torch.Generator().manual_seed(1234))
    stop = "epochs done"
    window: list[float] = []
    model.train()
    while state["step"] < total:
        # linear warm-up over 100 steps, then cosine decay to a tenth of the peak by the last step
        warm = min(1.0, (state["step"] + 1) / 100)
        frac = min(1.0, state["step"] / max(1, total))
        for group in opt.param_groups:
            group["lr"] = tc.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        g = np.random.default_rng([tc.seed, state["step"]])
        tg = torch.Generator().manual_seed(int(g.integers(2**62)))
        if family == "cnn":
            x = crop_batch(data["train"], crop, tc.batch_size, g, tc.augment_transpose)
            mask = random_masks(tc.batch_size, 4, crop, tg)
            loss = model.loss(x, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            logs = {"loss": loss.item()}
        else:
            logs = _gan_step(model, opt, data["train"], crop, tc, g, tg)
        state["step"] += 1
        window = (window + [logs["loss"] if family == "cnn" else logs["d_loss"]])[-50:]
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
        state["train_seconds"] = time.perf_counter() - t_start
        fit_bar_to_budget(bar, state["step"], total, state["train_seconds"], tc.max_minutes)
        if crash_at and state["step"] == crash_at:
            os._exit(137)
        if state["step"] % tc.checkpoint_every == 0:
            save("last", True)
        end_of_epoch = state["step"] % tc.steps_per_epoch == 0
        timed_out = tc.max_minutes is not None and state["train_seconds"] > tc.max_minutes * 60
        if end_of_epoch or timed_out or state["step"] >= total:
            state["epoch"] = math.ceil(state["step"] / tc.steps_per_epoch)
            row = {"epoch": state["epoch"], "step": state["step"], "seconds": round(state["train_seconds"], 1),
                   **{k: round(v, 4) for k, v in logs.items()}}
            model.eval()
            with torch.no_grad():
                if family == "cnn":
                    row["valid_loss"] = round(float(model.loss(fixed, fixed_mask)), 4)
                    improved = row["valid_loss"] < state["best_valid"]
                    if improved:
                        state["best_valid"] = row["valid_loss"]
                else:
                    zs, zp = model.sample_latents(32, torch.Generator().manual_seed(99))
                    fake = model.G(zs, zp)
                    row["valid_wasserstein"] = round(float(model.D(to_gan_roll(fixed, model.cfg)).mean()
                                                           - model.D(fake).mean()), 4)
                    # no likelihood to select on: best/ is the epoch whose samples' voice statistics
                    # come closest to the validation crops'
                    row["valid_stats"] = round(roll_stat_distance(gan_roll_to_classes(fake, 0.2), fixed), 4)
                    improved = row["valid_stats"] < state["best_valid"]
                    if improved:
                        state["best_valid"] = row["valid_stats"]
                    _sample_grid(model, run / "samples" / f"epoch-{state['epoch']:03d}.png")
            model.train()
            close_epoch(run, state, row, save, improved, bar)
            if timed_out:
                stop = "time limit"
                break
    bar.close()
    summary = {"family": family, "n_params": model.n_params(), "steps": state["step"], "epochs": state["epoch"],
               "seconds": round(state["train_seconds"], 1), "stop_reason": stop,
               "best_valid": state["best_valid"] if np.isfinite(state["best_valid"]) else None}
    write_json(run / "summary.json", summary)
    return summary


def roll_stat_distance(fake: torch.Tensor, real: torch.Tensor) -> float:
    """How far generated four-voice rolls (B, 4, T classes) are from real ones in what a
    listener hears first, voice by voice: register (mean pitch, in octaves), how often
    the voice sounds, how often it starts a note (per step, × 4) and its pitch-class
    histogram (L1, × 0.5). 0 when the statistics agree."""
    def stats(x: torch.Tensor, v: int):
        c = x[:, v]
        snd = c > 0
        prev = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], 1)
        onset = snd & (c != prev)
        p = (c[snd] - 1).float()
        pcs = torch.bincount((c[snd] - 1 + 36) % 12, minlength=12).float()
        return (p.mean() / 12 if len(p) else torch.tensor(0.0), snd.float().mean(), onset.float().mean(),
                pcs / pcs.sum().clamp(min=1))

    d = 0.0
    for v in range(fake.shape[1]):
        (mf, sf, of, hf), (mr, sr, orr, hr) = stats(fake, v), stats(real, v)
        d += float((mf - mr).abs() + (sf - sr).abs() + 4 * (of - orr).abs() + 0.5 * (hf - hr).abs().sum())
    return d


def _gan_step(model: RollGAN, opt, train, crop, tc: RollTrainConfig, g, tg) -> dict:
    """n_critic critic updates with the gradient penalty, then one generator update."""
    G, D, cfg = model.G, model.D, model.cfg
    for _ in range(tc.n_critic):
        real = to_gan_roll(crop_batch(train, crop, tc.batch_size, g, tc.augment_transpose), cfg)
        zs, zp = model.sample_latents(tc.batch_size, tg)
        with torch.no_grad():
            fake = G(zs, zp)
        d_real, d_fake = D(real).mean(), D(fake).mean()
        gp = gradient_penalty(D, real, fake, tg)
        d_loss = d_fake - d_real + tc.gp_weight * gp
        opt.zero_grad(set_to_none=True)
        d_loss.backward()
        opt.step()  # only D has gradients: Adam skips parameters without one
    zs, zp = model.sample_latents(tc.batch_size, tg)
    g_loss = -D(G(zs, zp)).mean()
    opt.zero_grad(set_to_none=True)
    g_loss.backward()
    for p in D.parameters():
        p.grad = None
    opt.step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "wasserstein": (d_real - d_fake).item(), "gp": gp.item()}


def close_epoch(run: Path, state: dict, row: dict, save, improved: bool, bar) -> None:
    """The end of an epoch, shared by the roll and note trainers: record the row, write
    best/ (when it improved) and last/, metrics and curves, and say it on the bar."""
    state["history"].append(row)
    if improved:
        save("best", False)
    save("last", True)
    _write_metrics(run, state["history"])
    bar.write(f"epoch {state['epoch']}: " + ", ".join(f"{k} {v}" for k, v in row.items()
                                                      if k not in ("epoch", "step")))


def _write_metrics(run: Path, hist: list[dict]) -> None:
    from tunesmith.train.trainer import write_history

    write_history(run, hist)
    _plot(run / "curves.png", hist)


def _plot(path: Path, hist: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in hist[-1] if k not in ("epoch", "step", "seconds")]
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in hist]
    for k in keys:
        ax.plot(steps, [r.get(k, np.nan) for r in hist], marker=".", label=k)
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _sample_grid(model: RollGAN, path: Path, n: int = 4) -> None:
    """Fixed-noise samples as a grid of piano rolls (voices in four colours)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    zs, zp = model.sample_latents(n, torch.Generator().manual_seed(7))
    with torch.no_grad():
        roll = model.G(zs, zp)
    B, V, nb, st, P = roll.shape
    img = roll.reshape(B, V, nb * st, P).numpy()
    colors = np.array([[0.85, 0.1, 0.1], [0.1, 0.6, 0.1], [0.1, 0.3, 0.9], [0.6, 0.2, 0.7]])
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3), squeeze=False)
    for i, ax in enumerate(axes[0]):
        rgb = np.ones((P, nb * st, 3))
        for v in range(V):
            a = (img[i, v].T >= np.maximum(img[i, v].max(axis=1), 0.2)[None, :])[..., None]
            rgb = np.where(a, colors[v], rgb)
        ax.imshow(rgb, origin="lower", aspect="auto", interpolation="nearest")
        for b in range(1, nb):
            ax.axvline(b * st - 0.5, color="0.7", lw=0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(path.stem)
    fig.tight_layout()
    tmp = path.with_suffix(".part.png")
    fig.savefig(tmp, dpi=70)
    plt.close(fig)
    tmp.replace(path)
