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
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tunesmith import __version__
from tunesmith.errors import OptionError, TunesmithError
from tunesmith.models import registry
from tunesmith.models.rollnets import (
    RollGAN,
    gan_roll_to_classes,
    gradient_penalty,
    random_masks,
    to_gan_roll,
)
from tunesmith.represent.voices import N_CLASSES, score_to_voices
from tunesmith.train.data import read_split_cache, write_split_cache
from tunesmith.train.loop import (
    begin,
    check_settings,
    fit,
    run_lock,
    setup_distributed,
    sync_gradients,
)

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
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    seed: int = 0
    device: str = "cpu"

    def check(self) -> None:
        check_settings(self, "steps_per_epoch")


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


# --------------------------------------------------------------------------- the steps


def train_rolls(run_dir: str | Path, family: str, model_cfg: dict, data: dict[str, list[np.ndarray]],
                tc: RollTrainConfig, *, resume: bool = False, progress: bool = True,
                extra: dict | None = None) -> dict:
    """Train (or resume) Coconet or the piano-roll GAN through the one loop."""
    tc.check()
    run = Path(run_dir)
    rank, world, device = setup_distributed(tc.device)
    with run_lock(run) if rank == 0 else nullcontext():
        tc, saved = begin(run, family, tc, resume=resume, data=(extra or {}).get("dataset"), data_key="dataset")
        if saved is not None:
            model_cfg = saved["model"]
        if family not in STEPS:
            raise OptionError("--family", f"unknown piano-roll family '{family}'")
        torch.manual_seed(tc.seed)
        model = build_roll_model(family, model_cfg).to(device)
        step = STEPS[family](model, data, tc, device)
        meta = {"family": family, "model": asdict(model.cfg), "representation": REPRESENTATION,
                "code_version": __version__, "n_params": model.n_params(), **(extra or {})}
        after = (lambda r, e: _sample_grid(model, r / "samples" / f"epoch-{e:03d}.png")) if family == "gan" else None
        return fit(run, step, tc, meta, resume=resume, progress=progress, after_epoch=after, rank=rank, world=world)


class CoconetStep:
    """Coconet: random beat-aligned crops (transposed at random), random masks of the four
    voices, and the loss of the masked cells. Held-out score: that loss on fixed crops
    and masks of the validation pieces."""

    def __init__(self, model, data: dict[str, list[np.ndarray]], tc: RollTrainConfig, device: str = "cpu"):
        self.model, self.data, self.tc, self.device = model, data, tc, device
        self.opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=1e-4)
        self.steps_per_epoch = tc.steps_per_epoch
        self.crop = model.cfg.crop
        valid = data.get("valid") or data["train"]
        self.fixed = crop_batch(valid, self.crop, 32, np.random.default_rng(1234), transpose=False).to(device)
        self.fixed_mask = random_masks(32, 4, self.crop, torch.Generator().manual_seed(1234)).to(device)

    def __call__(self, step: int, g: np.random.Generator, tg: torch.Generator) -> dict[str, float]:
        tc = self.tc
        x = crop_batch(self.data["train"], self.crop, tc.batch_size, g, tc.augment_transpose).to(self.device)
        mask = random_masks(tc.batch_size, 4, self.crop, tg).to(self.device)
        loss = self.model.loss(x, mask)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(self.model.parameters())
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, progress: bool) -> dict[str, float]:
        self.model.eval()
        try:
            return {"valid_loss": float(self.model.loss(self.fixed, self.fixed_mask))}
        finally:
            self.model.train()


class RollGANStep:
    """The piano-roll WGAN-GP: ``n_critic`` critic updates with the gradient penalty, then
    one generator update. A critic's loss is no held-out score: ``best/`` is the epoch
    whose samples' voice statistics come closest to the validation crops'."""

    def __init__(self, model: RollGAN, data: dict[str, list[np.ndarray]], tc: RollTrainConfig, device: str = "cpu"):
        self.model, self.data, self.tc, self.device = model, data, tc, device
        self.opt = torch.optim.Adam([{"params": model.D.parameters()}, {"params": model.G.parameters()}],
                                    lr=tc.lr, betas=(0.5, 0.9))
        self.steps_per_epoch = tc.steps_per_epoch
        self.crop = model.cfg.n_bars * model.cfg.steps_per_bar
        valid = data.get("valid") or data["train"]
        self.fixed = crop_batch(valid, self.crop, 32, np.random.default_rng(1234), transpose=False)

    def _latents(self, n: int, tg: torch.Generator):
        zs, zp = self.model.sample_latents(n, tg)
        return zs.to(self.device), zp.to(self.device)

    def __call__(self, step: int, g: np.random.Generator, tg: torch.Generator) -> dict[str, float]:
        model, tc, opt = self.model, self.tc, self.opt
        G, D, cfg = model.G, model.D, model.cfg
        for _ in range(tc.n_critic):
            real = to_gan_roll(crop_batch(self.data["train"], self.crop, tc.batch_size, g, tc.augment_transpose),
                               cfg).to(self.device)
            zs, zp = self._latents(tc.batch_size, tg)
            with torch.no_grad():
                fake = G(zs, zp)
            d_real, d_fake = D(real).mean(), D(fake).mean()
            gp = gradient_penalty(D, real, fake, tg)
            d_loss = d_fake - d_real + tc.gp_weight * gp
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            sync_gradients(D.parameters())
            opt.step()  # only D has gradients: Adam skips parameters without one
        zs, zp = self._latents(tc.batch_size, tg)
        g_loss = -D(G(zs, zp)).mean()
        opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for p in D.parameters():
            p.grad = None
        sync_gradients(G.parameters())
        opt.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "wasserstein": (d_real - d_fake).item(),
                "gp": gp.item()}

    @torch.no_grad()
    def validate(self, progress: bool) -> dict[str, float]:
        model = self.model
        model.eval()
        try:
            zs, zp = model.sample_latents(32, torch.Generator().manual_seed(99))
            fake = model.G(zs.to(self.device), zp.to(self.device)).cpu()
            stats = roll_stat_distance(gan_roll_to_classes(fake, 0.2), self.fixed)
            real = to_gan_roll(self.fixed, model.cfg).to(self.device)
            wass = float(model.D(real).mean() - model.D(fake.to(self.device)).mean())
            return {"valid_stats": stats, "valid_wasserstein": wass}
        finally:
            model.train()


STEPS = {"cnn": CoconetStep, "gan": RollGANStep}


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
    import io

    from tunesmith.fileio import atomic_write_bytes

    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=70)
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())
