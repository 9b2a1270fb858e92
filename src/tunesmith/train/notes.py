"""Training the conditional WaveGAN on a rendered note data set (WGAN-GP).

The run folder is laid out as for the other families (``last/``, ``best/``,
``metrics.csv``/``.json``, ``curves.png``, ``summary.json``) plus
``samples/epoch-NNN.png``: spectrograms of fixed-noise samples after each epoch.
Batches come from a generator seeded by (seed, step), so ``--resume`` continues an
interrupted run exactly.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tunesmith import __version__
from tunesmith.errors import OptionError, TunesmithError
from tunesmith.models import registry
from tunesmith.models.ddsp import DDSPGAN, log_spectrum_distance, multi_resolution_stft_loss
from tunesmith.models.note_classifier import ClassifierConfig, NoteClassifier
from tunesmith.models.wavegan import WaveGAN, wave_gradient_penalty
from tunesmith.music.notes import NoteData, dataset_info, load_split
from tunesmith.train.loop import (
    begin,
    check_settings,
    fit,
    run_lock,
    setup_distributed,
    sync_gradients,
)

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
    device: str = "cpu"
    min_lr_ratio: float = 1.0  # a constant learning rate (the one loop's cosine, with no decay)
    lr_warmup_steps: int = 0

    def check(self) -> None:
        check_settings(self, "steps_per_epoch", "n_critic")
        if self.warmup_steps < 0:
            raise OptionError("--warmup-steps", f"must be 0 or more, got {self.warmup_steps}")


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


class _NoteStep:
    """What both note GANs' steps share: the training clips (and held-out ones) as batches
    on the step's device, and an epoch of ``steps_per_epoch`` steps."""

    def __init__(self, model, tc: WaveTrainConfig, train: _Batches, valid: _Batches | None, device: str):
        self.model, self.tc, self.batch, self.valid, self.device = model, tc, train, valid, device
        self.steps_per_epoch = tc.steps_per_epoch

    def draw(self, g: np.random.Generator, n: int):
        return tuple(t.to(self.device) for t in self.batch(g.integers(0, self.batch.n, n)))


class WaveGANStep(_NoteStep):
    """WGAN-GP: ``n_critic`` critic updates with the gradient penalty, then one generator update."""

    def __init__(self, model: WaveGAN, tc: WaveTrainConfig, train, valid=None, device: str = "cpu"):
        super().__init__(model, tc, train, valid, device)
        self.opt = torch.optim.Adam([{"params": model.D.parameters()}, {"params": model.G.parameters()}],
                                    lr=tc.lr, betas=(0.5, 0.9))

    def __call__(self, step: int, g: np.random.Generator, tg: torch.Generator) -> dict:
        model, tc, opt = self.model, self.tc, self.opt
        G, D = model.G, model.D
        for _ in range(tc.n_critic):
            real, p, i, _ = self.draw(g, tc.batch_size)
            z = torch.randn(tc.batch_size, model.cfg.z_dim, generator=tg).to(self.device)
            with torch.no_grad():
                fake = G(z, p, i)
            d_real, d_fake = D(real, p, i, tg).mean(), D(fake, p, i, tg).mean()
            gp = wave_gradient_penalty(D, real, fake, p, i, tg)
            d_loss = d_fake - d_real + tc.gp_weight * gp
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            sync_gradients(D.parameters())
            opt.step()
        _, p, i, _ = self.draw(g, tc.batch_size)
        z = torch.randn(tc.batch_size, model.cfg.z_dim, generator=tg).to(self.device)
        g_loss = -D(G(z, p, i), p, i, tg).mean()
        opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for q in D.parameters():
            q.grad = None
        sync_gradients(G.parameters())
        opt.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "wasserstein": (d_real - d_fake).item(),
                "gp": gp.item()}

    def validate(self, progress: bool) -> dict:
        return {}  # a WGAN critic's loss is no held-out score: the latest epoch is kept as best


class DDSPStep(_NoteStep):
    """One DDSP GAN step. Half the batch is generated at z = 0 and compared with the real
    note of the same pitch, instrument and velocity (multi-resolution STFT loss and
    feature matching); the other half, the same notes at random z, only has to fool
    the critics, and a capped mode-seeking term (the log-spectral distance between the
    two halves per unit of |z|) keeps z audible. Critics: least-squares GAN loss."""

    def __init__(self, model: DDSPGAN, tc: WaveTrainConfig, train, valid=None, device: str = "cpu"):
        super().__init__(model, tc, train, valid, device)
        self.opt = torch.optim.Adam([{"params": model.D.parameters()}, {"params": model.G.parameters()}],
                                    lr=tc.lr, betas=(0.8, 0.99))

    def _generate(self, p, i, v, z, tg):
        cfg = self.model.cfg
        noise = torch.randn(len(p), -(-cfg.length // cfg.hop) * cfg.hop, generator=tg).to(self.device)
        return self.model.G(z, p + cfg.pitch_lo, i, v, noise=noise)

    def __call__(self, step: int, g: np.random.Generator, tg: torch.Generator) -> dict:
        model, tc, opt = self.model, self.tc, self.opt
        D, cfg = model.D, model.cfg
        half = max(1, tc.batch_size // 2)
        real, p, i, v = self.draw(g, half)
        z = torch.cat([torch.zeros(half, cfg.z_dim), torch.randn(half, cfg.z_dim, generator=tg)]).to(self.device)
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
            sync_gradients(D.parameters())
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
        sync_gradients(model.G.parameters())
        opt.step()
        logs.update(g_loss=g_loss.item(), recon=recon.item(), z_spread=dist.mean().item())
        return logs

    @torch.no_grad()
    def validate(self, progress: bool) -> dict:
        """Multi-resolution STFT loss of the z = 0 notes against the held-out (valid) notes."""
        valid = self.valid
        if valid is None or valid.n == 0:
            return {}
        was = self.model.G.training
        self.model.G.eval()
        tg = torch.Generator().manual_seed(1234)
        total, n = 0.0, 0
        for a in range(0, valid.n, 32):
            real, p, i, v = (t.to(self.device) for t in valid(np.arange(a, min(valid.n, a + 32))))
            fake = self._generate(p, i, v, torch.zeros(len(p), self.model.cfg.z_dim, device=self.device), tg)
            total += float(multi_resolution_stft_loss(fake, real)) * len(p)
            n += len(p)
        self.model.G.train(was)
        return {"valid_recon": total / n}


STEPS = {"wavegan": WaveGANStep, "ddsp-gan": DDSPStep}


def train_notes(run_dir: str | Path, data_path: str | Path, model_overrides: dict, tc: WaveTrainConfig, *,
                family: str = "ddsp-gan", resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a note GAN (every family in ``STEPS``) through the one loop, with
    sample spectrograms after every epoch."""
    tc.check()
    run = Path(run_dir)
    if family not in STEPS:
        raise OptionError("--family", f"unknown note GAN family '{family}' (known: {', '.join(FAMILIES)})")
    rank, world, device = setup_distributed(tc.device)
    cond = conditioning(data_path)
    render = dataset_info(data_path)["render"]
    with run_lock(run) if rank == 0 else nullcontext():
        tc, saved = begin(run, family, tc, resume=resume, data={"render": render}, data_key="data")
        if saved is not None:
            cfg_d = saved["model"]
        else:
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
        model = build_note_model(family, cfg_d).to(device)
        step = STEPS[family](model, tc, _Batches(train, cond), _Batches(valid_data, cond) if len(valid_data.audio)
                             else None, device)
        meta = {"family": family, "model": asdict(model.cfg), "programs": cond["programs"],
                "data": {"path": str(data_path), "render": render}, "code_version": __version__,
                "n_params": model.n_params()}
        return fit(run, step, tc, meta, resume=resume, progress=progress, rank=rank, world=world,
                   after_epoch=lambda r, e: _spectrogram_grid(model, cond, r / "samples" / f"epoch-{e:03d}.png"))


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


@dataclass
class ClassifierTrainConfig:
    """Training settings of the note classifier (a one-cycle-like schedule: warm-up over the
    first 30% of the steps, then cosine decay)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    family_weight: float = 0.5
    lr_warmup_steps: int = 0  # set from the plan by train_classifier: 30% of the steps
    min_lr_ratio: float = 0.01
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "cpu"

    def check(self) -> None:
        check_settings(self)
        if not self.family_weight > 0:
            raise OptionError("--family-weight", f"must be positive, got {self.family_weight}")


class ClassifierStep:
    """The note classifier's step: shuffled batches per epoch with light augmentation (gain,
    noise, a time shift); pitch loss plus ``family_weight`` × instrument-family loss.
    Held-out score: the error rate, pitch and family averaged, on the valid clips."""

    def __init__(self, model: NoteClassifier, train: NoteData, valid: NoteData, tc: ClassifierTrainConfig,
                 device: str = "cpu"):
        cfg = model.cfg
        self.model, self.valid, self.tc, self.device = model, valid, tc, device
        self.opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        fam_index = {f: i for i, f in enumerate(cfg.families)}
        self.x = torch.from_numpy(train.audio)
        self.yp = torch.from_numpy(train.pitch - cfg.pitch_lo).long()
        self.yf = torch.tensor([fam_index[int(f)] for f in train.family])
        self.steps_per_epoch = -(-len(self.x) // tc.batch_size)
        self._epoch, self._perm = -1, None

    def __call__(self, step: int, g: np.random.Generator, tg: torch.Generator) -> dict[str, float]:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._perm = torch.from_numpy(np.random.default_rng([self.tc.seed, epoch]).permutation(len(self.x)))
            self._epoch = epoch
        idx = self._perm[i * self.tc.batch_size:(i + 1) * self.tc.batch_size]
        x = self.x[idx] * torch.from_numpy(g.uniform(0.3, 1.5, (len(idx), 1))).float()
        x = x + 0.003 * torch.randn(x.shape, generator=tg)
        x = torch.roll(x, int(g.integers(-800, 800)), dims=1).to(self.device)
        lp, lf, _ = self.model(x)
        loss = (F.cross_entropy(lp, self.yp[idx].to(self.device))
                + self.tc.family_weight * F.cross_entropy(lf, self.yf[idx].to(self.device)))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(self.model.parameters())
        self.opt.step()
        return {"loss": loss.item()}

    def validate(self, progress: bool) -> dict[str, float]:
        if self.valid is None or not len(self.valid.audio):
            return {}
        acc = classifier_accuracy(self.model, self.valid)
        return {"valid_error": 1 - (acc["pitch_accuracy"] + acc["family_accuracy"]) / 2,
                "valid_pitch_accuracy": acc["pitch_accuracy"], "valid_family_accuracy": acc["family_accuracy"]}


def classifier_accuracy(model: NoteClassifier, data: NoteData) -> dict[str, float]:
    cfg = model.cfg
    was = model.training
    model.eval()
    pred = model.predict(data.audio)
    model.train(was)
    return {"pitch_accuracy": float((pred["pitch"].argmax(1) + cfg.pitch_lo == data.pitch).mean()),
            "family_accuracy": float((np.array(cfg.families)[pred["family"].argmax(1)] == data.family).mean())}


def train_classifier(run_dir: str | Path, data_path: str | Path, cfg: ClassifierConfig, tc: ClassifierTrainConfig,
                     *, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) the pitch and instrument-family classifier through the one loop;
    ``best/`` is the epoch with the fewest held-out errors. Returns the summary, with the
    best checkpoint's valid accuracies."""
    tc.check()
    run = Path(run_dir)
    rank, world, device = setup_distributed(tc.device)
    info = dataset_info(data_path)
    with run_lock(run) if rank == 0 else nullcontext():
        tc, saved = begin(run, "note-classifier", tc, resume=resume, data={"render": info["render"]}, data_key="data")
        if saved is not None:
            cfg = registry.config_from_dict("note-classifier", saved["model"])
        train, valid = load_split(data_path, "train"), load_split(data_path, "valid")
        if not len(train.audio):
            raise TunesmithError(f"{data_path}: the training split is empty")
        if saved is None:
            steps = -(-len(train.audio) // tc.batch_size) * tc.epochs
            tc.lr_warmup_steps = int(0.3 * (min(steps, tc.max_steps) if tc.max_steps else steps))
        torch.manual_seed(tc.seed)
        model = NoteClassifier(cfg).to(device)
        step = ClassifierStep(model, train, valid, tc, device)
        meta = {"family": "note-classifier", "model": asdict(cfg), "code_version": __version__,
                "data": {"path": str(data_path), "render": info["render"], "programs": info["programs"]},
                "n_params": sum(p.numel() for p in model.parameters())}
        summary = fit(run, step, tc, meta, resume=resume, progress=progress, rank=rank, world=world)
    best = json.loads((run / "metrics.json").read_text())
    rows = [r for r in best if "valid_error" in r]
    if rows:
        top = min(rows, key=lambda r: r["valid_error"])
        summary["valid"] = {"pitch_accuracy": top["valid_pitch_accuracy"], "family_accuracy": top["valid_family_accuracy"]}
    return summary
