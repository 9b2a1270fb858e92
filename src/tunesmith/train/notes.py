"""Training the conditional WaveGAN on a rendered note data set (WGAN-GP).

The run folder is laid out as for the other families (``last/``, ``best/``,
``metrics.csv``/``.json``, ``curves.png``, ``summary.json``) plus
``samples/epoch-NNN.png``: spectrograms of fixed-noise samples after each epoch.
Batches come from a generator seeded by (seed, step), so ``--resume`` continues an
interrupted run exactly.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tunesmith import __version__
from tunesmith.errors import OptionError, TunesmithError
from tunesmith.fileio import write_json
from tunesmith.models import registry
from tunesmith.models.checkpoint import load_trainer, load_weights, read_config, write_checkpoint
from tunesmith.models.ddsp import DDSPGAN, log_spectrum_distance, multi_resolution_stft_loss
from tunesmith.models.note_classifier import ClassifierConfig, NoteClassifier
from tunesmith.models.wavegan import WaveGAN, wave_gradient_penalty
from tunesmith.music.notes import NoteData, dataset_info, load_split
from tunesmith.train.trainer import fit_bar_to_budget

FAMILIES = ("ddsp-gan", "wavegan")


@dataclass
class WaveTrainConfig:
    """Training settings of a note GAN. ``n_critic`` and ``gp_weight`` are WaveGAN's
    (WGAN-GP); ``recon_weight``, ``fm_weight``, ``ms_weight`` and ``warmup_steps``
    (reconstruction-only steps before the critics join) are the DDSP GAN's."""

    epochs: int = 20
    steps_per_epoch: int = 50
    batch_size: int = 32
    lr: float = 1e-4
    n_critic: int = 5
    gp_weight: float = 10.0
    recon_weight: float = 10.0
    fm_weight: float = 2.0
    ms_weight: float = 0.5
    warmup_steps: int = 0
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
        if self.warmup_steps < 0:
            raise OptionError("--warmup-steps", f"must be 0 or more, got {self.warmup_steps}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise OptionError("--train-minutes", f"must be positive, got {self.max_minutes}")


def build_note_model(family: str, cfg: dict) -> WaveGAN | DDSPGAN:
    if family not in FAMILIES:
        raise TunesmithError(f"unknown note GAN family '{family}' (known: {', '.join(FAMILIES)})")
    return registry.build(family, cfg)


def conditioning(data_path: str | Path) -> dict:
    """The labels a model trained on this data set is conditioned on."""
    info = dataset_info(data_path)
    p = info["params"]
    return {"pitch_lo": p["pitch_lo"], "n_pitches": p["pitch_hi"] - p["pitch_lo"] + 1,
            "programs": info["programs"], "n_instruments": len(info["programs"]),
            "length": p["length"], "sample_rate": p["sample_rate"], "hold": p["hold"]}


def _labels(data: NoteData, cond: dict) -> tuple[torch.Tensor, torch.Tensor]:
    prog_index = {p: i for i, p in enumerate(cond["programs"])}
    return (torch.from_numpy(data.pitch - cond["pitch_lo"]).long(),
            torch.tensor([prog_index[int(p)] for p in data.program], dtype=torch.long))


class WaveGANStep:
    """WGAN-GP: ``n_critic`` critic updates with the gradient penalty, then one generator update."""

    def __init__(self, model: WaveGAN, tc: WaveTrainConfig):
        self.model, self.tc = model, tc
        self.opt = torch.optim.Adam([{"params": model.D.parameters()}, {"params": model.G.parameters()}],
                                    lr=tc.lr, betas=(0.5, 0.9))

    def __call__(self, batch, g: np.random.Generator, tg: torch.Generator, step: int) -> dict:
        model, tc, opt = self.model, self.tc, self.opt
        G, D = model.G, model.D
        for _ in range(tc.n_critic):
            real, p, i, _ = batch(g.integers(0, batch.n, tc.batch_size))
            z = torch.randn(tc.batch_size, model.cfg.z_dim, generator=tg)
            with torch.no_grad():
                fake = G(z, p, i)
            d_real, d_fake = D(real, p, i, tg).mean(), D(fake, p, i, tg).mean()
            gp = wave_gradient_penalty(D, real, fake, p, i, tg)
            d_loss = d_fake - d_real + tc.gp_weight * gp
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            opt.step()
        _, p, i, _ = batch(g.integers(0, batch.n, tc.batch_size))
        z = torch.randn(tc.batch_size, model.cfg.z_dim, generator=tg)
        g_loss = -D(G(z, p, i), p, i, tg).mean()
        opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for q in D.parameters():
            q.grad = None
        opt.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "wasserstein": (d_real - d_fake).item(),
                "gp": gp.item()}

    def validate(self, valid) -> dict:
        return {}  # a WGAN critic's loss is no held-out score: the latest epoch is kept as best


class DDSPStep:
    """One DDSP GAN step. Half the batch is generated at z = 0 and compared with the real
    note of the same pitch, instrument and velocity (multi-resolution STFT loss and
    feature matching); the other half, the same notes at random z, only has to fool
    the critics, and a capped mode-seeking term (the log-spectral distance between the
    two halves per unit of |z|) keeps z audible. Critics: least-squares GAN loss."""

    def __init__(self, model: DDSPGAN, tc: WaveTrainConfig):
        self.model, self.tc = model, tc
        self.opt = torch.optim.Adam([{"params": model.D.parameters()}, {"params": model.G.parameters()}],
                                    lr=tc.lr, betas=(0.8, 0.99))

    def _generate(self, p, i, v, z, tg):
        cfg = self.model.cfg
        noise = torch.randn(len(p), -(-cfg.length // cfg.hop) * cfg.hop, generator=tg)
        return self.model.G(z, p + cfg.pitch_lo, i, v, noise=noise)

    def __call__(self, batch, g: np.random.Generator, tg: torch.Generator, step: int) -> dict:
        model, tc, opt = self.model, self.tc, self.opt
        D, cfg = model.D, model.cfg
        half = max(1, tc.batch_size // 2)
        real, p, i, v = batch(g.integers(0, batch.n, half))
        z = torch.cat([torch.zeros(half, cfg.z_dim), torch.randn(half, cfg.z_dim, generator=tg)])
        pp, ii, vv = p.repeat(2), i.repeat(2), v.repeat(2)
        fake = self._generate(pp, ii, vv, z, tg)
        logs = {}
        adversarial = step >= tc.warmup_steps
        if adversarial:
            d_real = D(real, p, i)
            d_fake = D(fake.detach(), pp, ii)
            d_loss = sum(((sr - 1) ** 2).mean() + (sf ** 2).mean() for (sr, _), (sf, _) in zip(d_real, d_fake))
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            opt.step()
            logs["d_loss"] = d_loss.item()
        recon = multi_resolution_stft_loss(fake[:half], real)
        dist = log_spectrum_distance(fake[half:], fake[:half].detach()) / z[half:].abs().mean(1)
        ms = -dist.clamp(max=1.0).mean()
        g_loss = tc.recon_weight * recon + tc.ms_weight * ms
        if adversarial:
            outs = D(fake, pp, ii)
            with torch.no_grad():
                real_feats = [f for _, f in D(real, p, i)]
            adv = sum(((sf - 1) ** 2).mean() for sf, _ in outs)
            fm = sum(F.l1_loss(ff[:half], fr) for (_, fs), rf in zip(outs, real_feats) for ff, fr in zip(fs, rf))
            fm = fm / sum(len(f) for f in real_feats)
            g_loss = g_loss + adv + tc.fm_weight * fm
            logs.update(g_adv=adv.item(), feature_matching=fm.item())
        opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for q in D.parameters():
            q.grad = None
        opt.step()
        logs.update(g_loss=g_loss.item(), recon=recon.item(), z_spread=dist.mean().item())
        return logs

    @torch.no_grad()
    def validate(self, valid) -> dict:
        """Multi-resolution STFT loss of the z = 0 notes against the held-out (valid) notes."""
        if valid is None or valid.n == 0:
            return {}
        was = self.model.G.training
        self.model.G.eval()
        tg = torch.Generator().manual_seed(1234)
        total, n = 0.0, 0
        for a in range(0, valid.n, 32):
            real, p, i, v = valid(np.arange(a, min(valid.n, a + 32)))
            fake = self._generate(p, i, v, torch.zeros(len(p), self.model.cfg.z_dim), tg)
            total += float(multi_resolution_stft_loss(fake, real)) * len(p)
            n += len(p)
        self.model.G.train(was)
        return {"valid_recon": total / n}


STEPS = {"wavegan": WaveGANStep, "ddsp-gan": DDSPStep}


class _Batches:
    """Indexable training clips: batch(idx) → (audio, pitch index, instrument index, velocity)."""

    def __init__(self, data: NoteData, cond: dict):
        self.x = torch.from_numpy(data.audio)
        self.p, self.i = _labels(data, cond)
        self.v = torch.from_numpy(data.velocity).float()
        self.n = len(self.x)

    def __call__(self, idx):
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return self.x[idx], self.p[idx], self.i[idx], self.v[idx]


def train_notes(run_dir: str | Path, data_path: str | Path, model_overrides: dict, tc: WaveTrainConfig, *,
                family: str = "ddsp-gan", resume: bool = False, progress: bool = True) -> dict:
    """The note-GAN training loop, for every family in ``STEPS``: seeded batches
    (``--resume`` continues a killed run exactly), ``last/`` every ``checkpoint_every``
    steps, an epoch row (+ validation where the family has one, which then chooses
    ``best/``; otherwise ``best/`` is the latest epoch), sample spectrograms per epoch,
    metrics.csv/json and curves.png. One process per run folder."""
    from tunesmith.train.trainer import run_lock

    with run_lock(Path(run_dir)):
        return _train_notes(run_dir, data_path, model_overrides, tc, family=family, resume=resume, progress=progress)


def _train_notes(run_dir, data_path, model_overrides, tc, *, family, resume, progress) -> dict:
    from tqdm import tqdm

    from tunesmith.train.roll_trainer import close_epoch

    run = Path(run_dir)
    state = {"epoch": 0, "step": 0, "history": [], "train_seconds": 0.0, "best_valid": None}
    cond = conditioning(data_path)
    if resume:
        if not (run / "last" / "config.json").is_file():
            raise TunesmithError(f"{run}: nothing to resume (no checkpoint in {run / 'last'})")
        saved = read_config(run / "last")
        if saved.get("family") != family:
            raise OptionError("--family", f"the run in {run} is a {saved.get('family')} run, not {family}")
        cfg_d = saved["model"]
        keep = {k: getattr(tc, k) for k in ("epochs", "max_minutes", "max_steps")}
        tc = WaveTrainConfig(**{**saved["train"], **keep})
    else:
        if family not in STEPS:
            raise OptionError("--family", f"unknown note GAN family '{family}' (known: {', '.join(FAMILIES)})")
        if (run / "last" / "config.json").exists():
            raise TunesmithError(f"{run}: a run is already here; pass --resume to continue it or choose another --out")
        keys = ("pitch_lo", "n_pitches", "n_instruments", "length", "sample_rate")
        cfg_d = {**{k: cond[k] for k in keys}, **model_overrides}
        if family == "ddsp-gan":
            cfg_d["hold"] = cond["hold"]
    train = load_split(data_path, "train")
    if not len(train.audio):
        raise TunesmithError(f"{data_path}: the training split is empty")
    if train.audio.shape[1] != cfg_d["length"]:
        raise OptionError("--data", f"clips are {train.audio.shape[1]} samples, the model makes {cfg_d['length']}")
    valid_data = load_split(data_path, "valid")
    torch.manual_seed(tc.seed)
    model = build_note_model(family, cfg_d)
    stepper = STEPS[family](model, tc)
    opt = stepper.opt
    if resume:
        load_weights(model, run / "last")
        state.update(load_trainer(opt, run / "last"))
    meta = {"family": family, "model": asdict(model.cfg), "train": asdict(tc), "programs": cond["programs"],
            "data": {"path": str(data_path), "render": dataset_info(data_path)["render"]},
            "code_version": __version__, "n_params": model.n_params()}

    def save(name: str, with_trainer: bool) -> None:
        write_checkpoint(run / name, model, dict(meta, metrics={"step": state["step"], "epoch": state["epoch"],
                                                               "best_valid": state["best_valid"]}),
                         optimizer=opt if with_trainer else None, trainer=state if with_trainer else None)

    run.mkdir(parents=True, exist_ok=True)
    batch = _Batches(train, cond)
    valid = _Batches(valid_data, cond) if len(valid_data.audio) else None
    total = tc.epochs * tc.steps_per_epoch
    if tc.max_steps:
        total = min(total, tc.max_steps)
    bar = tqdm(total=total, initial=min(state["step"], total), desc=f"train {family}", unit="step",
               disable=not progress, dynamic_ncols=True)
    t_start = time.perf_counter() - state["train_seconds"]
    crash_at = int(os.environ.get("TUNESMITH_CRASH_AT_STEP", "0"))
    stop = "epochs done"
    model.train()
    while state["step"] < total:
        g = np.random.default_rng([tc.seed, state["step"]])
        tg = torch.Generator().manual_seed(int(g.integers(2**62)))
        logs = stepper(batch, g, tg, state["step"])
        state["step"] += 1
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
        state["train_seconds"] = time.perf_counter() - t_start
        fit_bar_to_budget(bar, state["step"], total, state["train_seconds"], tc.max_minutes)
        if crash_at and state["step"] == crash_at:
            os._exit(137)
        if state["step"] % tc.checkpoint_every == 0:
            save("last", True)
        timed_out = tc.max_minutes is not None and state["train_seconds"] > tc.max_minutes * 60
        if state["step"] % tc.steps_per_epoch == 0 or timed_out or state["step"] >= total:
            state["epoch"] = -(-state["step"] // tc.steps_per_epoch)
            val = stepper.validate(valid)
            row = {"epoch": state["epoch"], "step": state["step"], "seconds": round(state["train_seconds"], 1),
                   "seconds_per_step": round(state["train_seconds"] / max(1, state["step"]), 3),
                   **{k: round(v, 4) for k, v in logs.items()}, **{k: round(v, 4) for k, v in val.items()}}
            _spectrogram_grid(model, cond, run / "samples" / f"epoch-{state['epoch']:03d}.png")
            score = next(iter(val.values()), None)
            improved = score is None or state["best_valid"] is None or score < state["best_valid"]
            if improved:
                state["best_valid"] = score
            close_epoch(run, state, row, save, improved, bar)
            if timed_out:
                stop = "time limit"
                break
    bar.close()
    summary = {"family": family, "n_params": model.n_params(), "steps": state["step"], "epochs": state["epoch"],
               "seconds": round(state["train_seconds"], 1),
               "seconds_per_step": round(state["train_seconds"] / max(1, state["step"]), 3), "stop_reason": stop,
               "best_valid": state["best_valid"]}
    write_json(run / "summary.json", summary)
    return summary


def _spectrogram_grid(model: WaveGAN | DDSPGAN, cond: dict, path: Path) -> None:
    n_inst = model.cfg.n_instruments
    pitches = [48, 60, 72, 84]
    pairs = [(p, i % n_inst) for i, p in enumerate(pitches)] + [(60, i) for i in range(n_inst)]
    pairs = [(p, i) for p, i in pairs if 0 <= p - model.cfg.pitch_lo < model.cfg.n_pitches][:8]
    was = model.G.training
    model.G.eval()
    x = model.sample(torch.tensor([p for p, _ in pairs]), torch.tensor([i for _, i in pairs]),
                     torch.full((len(pairs),), 80.0), torch.Generator().manual_seed(11))
    model.G.train(was)
    titles = [f"pitch {p}, program {cond['programs'][i]}" for p, i in pairs]
    from tunesmith.music.plot import save_spectrograms

    save_spectrograms(x.numpy(), titles, path, model.cfg.sample_rate)


def train_classifier(train, valid, cfg: ClassifierConfig, *, epochs: int = 30, batch: int = 32, seed: int = 0,
                     progress: bool = True, family_weight: float = 0.5) -> tuple[NoteClassifier, dict]:
    """Fit on the training clips with light augmentation (gain, noise, shift); returns the
    model and its accuracies on ``valid``."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    g = np.random.default_rng(seed)
    m = NoteClassifier(cfg)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=1e-4)
    fam_index = {f: i for i, f in enumerate(cfg.families)}
    x_all = torch.from_numpy(train.audio)
    yp = torch.from_numpy(train.pitch - cfg.pitch_lo)
    yf = torch.tensor([fam_index[int(f)] for f in train.family])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * ((len(x_all) + batch - 1) // batch))
    for _ in tqdm(range(epochs), desc="train classifier", disable=not progress, dynamic_ncols=True):
        m.train()
        perm = torch.from_numpy(g.permutation(len(x_all)))
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            x = x_all[idx] * torch.from_numpy(g.uniform(0.3, 1.5, (len(idx), 1))).float()
            x = x + 0.003 * torch.randn(x.shape)
            x = torch.roll(x, int(g.integers(-800, 800)), dims=1)
            lp, lf, _ = m(x)
            loss = F.cross_entropy(lp, yp[idx]) + family_weight * F.cross_entropy(lf, yf[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    pred = m.predict(valid.audio)
    acc = {"pitch_accuracy": float((pred["pitch"].argmax(1) + cfg.pitch_lo == valid.pitch).mean()),
           "family_accuracy": float((np.array(cfg.families)[pred["family"].argmax(1)] == valid.family).mean())}
    return m, acc
