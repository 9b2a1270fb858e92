"""The one training loop, for every family (issue #14).

A family brings a *step*: its model, its optimizer, how many steps make an epoch, one
training step, and (where it has one) a held-out score. Everything else lives here, once:

- a run folder per run, one process per folder (a lock beside it), a run already there
  refused without ``--resume``, and a resume refused on another family or other data;
- every step's randomness from (seed, step, rank) — batches, noise, dropout — so a run
  killed at any point and resumed from ``last/`` ends with the same weights as one that
  never stopped;
- one learning-rate policy: linear warm-up, then cosine decay to ``min_lr_ratio`` of the
  peak, by steps;
- a time budget (``--train-minutes``) that is turned into a number of steps once, after
  the first steps have been timed, and saved in the checkpoint: from then on both the
  schedule and the stop follow steps, so a resumed run (or a repeat at the same speed)
  is reproducible. Only a run that falls far behind its estimate (over 1.25 × its budget,
  e.g. on a machine busy with other work) is stopped by the clock;
- ``last/`` (weights, optimizer, loop state; written atomically) every
  ``checkpoint_every`` steps and at every epoch's end, ``best/`` on the held-out score,
  ``metrics.csv``/``metrics.json`` and ``curves.png`` after every epoch — and after a run
  stopped inside its first epoch — and ``summary.json``;
- one progress bar that estimates against the budget, and a bar for validation;
- ``--device`` (the step moves its batches) and ``torchrun`` data parallelism: every
  rank draws its own batches and the gradients are averaged across ranks before each
  optimizer step (:func:`sync_gradients`), which serves a GAN's two updates as well as
  a language model's one.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist

from tunesmith.errors import OptionError, TunesmithError
from tunesmith.fileio import atomic_write_bytes, atomic_write_text, write_json
from tunesmith.models.checkpoint import load_trainer, load_weights, read_config, write_checkpoint

# settings a resumed run may change; every other one comes from the run's checkpoint
EXTENDABLE = ("epochs", "max_minutes", "max_steps", "device")
PROBE_STEPS = 20  # steps timed before a time budget becomes a number of steps
OVERRUN = 1.25  # a run this far past its budget is stopped by the clock


class Step(Protocol):
    """What a family gives the loop."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    steps_per_epoch: int

    def __call__(self, step: int, g: np.random.Generator, tg: torch.Generator) -> dict[str, float]:
        """One training step (its batches drawn from ``g``/``tg``); returns what to log."""

    def validate(self, progress: bool) -> dict[str, float]:
        """Held-out scores; the first, lower is better, chooses ``best/``. ``{}``: no such
        score, the latest epoch is kept as best."""


def check_settings(tc, *at_least_one: str) -> None:
    """The checks every family's training settings share, with option names: ``epochs``,
    ``checkpoint_every``, ``batch_size`` and the named fields at least 1; a positive
    learning rate and budget; ``max_steps`` at least 1 when given."""
    for name in ("epochs", "batch_size", "checkpoint_every", *at_least_one):
        v = getattr(tc, name)
        if v < 1:
            raise OptionError("--" + name.replace("_", "-"), f"must be at least 1, got {v}")
    if not 0 < tc.lr <= 1:
        raise OptionError("--lr", f"must be in (0, 1], got {tc.lr}")
    if tc.max_minutes is not None and tc.max_minutes <= 0:
        raise OptionError("--train-minutes", f"must be positive, got {tc.max_minutes}")
    if tc.max_steps is not None and tc.max_steps < 1:
        raise OptionError("--max-steps", f"must be at least 1, got {tc.max_steps}")


# ----------------------------------------------------------------------------- run folders


@contextmanager
def run_lock(run: Path):
    """One training process per run folder: a second one started on the same ``--out``
    while the first runs is refused, instead of two writers taking turns on best/ and last/."""
    import fcntl

    # the lock sits beside the run folder, so that a start refused for any reason leaves no folder
    run.parent.mkdir(parents=True, exist_ok=True)
    f = open(run.parent / f".{run.name}.lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise TunesmithError(f"{run}: another training process is writing to this run folder right now") from None
    try:
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def check_same_data(run: Path, saved: dict, now: dict) -> None:
    """Refuse to resume a run on other data than it began with (another dataset, another
    version of it, or another representation): the result would be neither run."""
    keys = ("representation", "dataset", "name", "dataset_manifest_sha256", "manifest_sha256")
    was = {k: saved.get(k) for k in keys if saved.get(k) is not None}
    # a manifest hash recorded by an earlier version (of the manifest as written, with this
    # machine's paths) still names the same data
    diff = [k for k in was if now.get(k) is not None and was[k] not in (now[k], now.get(f"{k}_as_written"))]
    if diff:
        raise OptionError("--data", f"the run in {run} was trained on "
                          + ", ".join(f"{k} {str(was[k])[:16]}" for k in diff) + "; this data has "
                          + ", ".join(f"{k} {str(now[k])[:16]}" for k in diff) + ": start a new run (another --out)")


def last_checkpoint(run: Path) -> Path | None:
    for name in ("last", "last.old"):  # last.old: a kill between the two renames of an atomic replace
        if (run / name / "config.json").is_file():
            return run / name
    return None


def begin(run: Path, family: str, tc, *, resume: bool, data: dict | None = None, data_key: str = "representation"):
    """Where a run starts: ``(train config, saved checkpoint config or None)``. A new run
    may not overwrite one already there; a resumed one must exist, be of ``family`` and
    have been trained on the same ``data``; it keeps its own settings except
    :data:`EXTENDABLE` ones, taken from ``tc``."""
    last = last_checkpoint(run)
    if not resume:
        if last is not None:
            raise TunesmithError(f"{run}: a run is already here; pass --resume to continue it or choose another --out")
        return tc, None
    if last is None:
        raise TunesmithError(f"{run}: nothing to resume (no checkpoint in {run / 'last'})")
    saved = read_config(last)
    if saved.get("family") != family:
        raise OptionError("--family", f"the run in {run} is a {saved.get('family')} model, not {family}: resume it "
                          f"with --family {saved.get('family')}, or start a new run (another --out)")
    check_same_data(run, saved.get(data_key) or {}, data or {})
    names = {f.name for f in fields(tc)}
    kept = {k: v for k, v in saved["train"].items() if k in names}
    kept.update({k: getattr(tc, k) for k in EXTENDABLE if k in names})
    return type(tc)(**kept), saved


# ----------------------------------------------------------------------------- pieces of the loop


def lr_at(step: int, total: int, lr: float, warmup_steps: int = 0, min_lr_ratio: float = 1.0) -> float:
    """The one learning-rate policy: linear warm-up over ``warmup_steps``, then cosine decay
    from ``lr`` to ``min_lr_ratio × lr`` at step ``total`` (``min_lr_ratio`` 1: constant)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    frac = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def _lr_warmup(tc) -> int:
    # the note GANs' ``warmup_steps`` are reconstruction-only steps; their learning-rate warm-up is its own field
    return getattr(tc, "lr_warmup_steps", getattr(tc, "warmup_steps", 0))


def planned_steps(step: int, seconds: float, max_minutes: float, total: int) -> int:
    """The steps a time budget allows, from the pace so far (at least one more step)."""
    rate = seconds / max(step, 1)
    return max(step + 1, min(total, int(max_minutes * 60 / max(rate, 1e-9))))


def dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str = "cpu") -> tuple[int, int, str]:
    """Initialise torch.distributed when launched by torchrun; returns (rank, world, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
    rank, world = dist_info()
    check_device(device.split(":")[0] if world > 1 else device)
    return rank, world, device


def check_device(device: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N`` that this machine has; anything else is one clear line."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d+)?", device or ""):
        raise OptionError("--device", f"use cpu, cuda or cuda:N, not '{device}'")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OptionError("--device", "CUDA is not available on this machine")
        if ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
            raise OptionError("--device", f"this machine has {torch.cuda.device_count()} CUDA device(s)")


def sync_gradients(params) -> None:
    """Average the gradients of ``params`` across torchrun ranks (nothing in one process).
    A step calls it before each optimizer step; replicas that start equal stay equal."""
    rank, world = dist_info()
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world


def write_history(run: Path, hist: list[dict]) -> None:
    """A run's per-epoch rows as metrics.json and metrics.csv (every key any row has; both
    replaced atomically), and curves.png."""
    write_json(run / "metrics.json", hist)
    if not hist:
        return
    keys = list(dict.fromkeys(k for r in hist for k in r))
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(hist)
    atomic_write_text(run / "metrics.csv", text.getvalue())
    plot_curves(hist, run / "curves.png")


def plot_curves(hist: list[dict], path: Path) -> None:
    """Every logged number against the step: losses on the left axis, held-out scores
    dashed; the learning rate on its own axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skip = {"epoch", "step", "seconds", "seconds_per_step", "lr", "tokens_per_s"}
    keys = [k for k in dict.fromkeys(k for r in hist for k in r) if k not in skip]
    steps = [r["step"] for r in hist]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for k in keys:
        ys = [r.get(k) for r in hist]
        ys = [np.nan if y is None else y for y in ys]
        ax.plot(steps, ys, "s--" if k.startswith("valid") else "o-", ms=3, label=k)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(fontsize=8)
    if any("lr" in r for r in hist):
        ax2 = ax.twinx()
        ax2.plot(steps, [r.get("lr", np.nan) for r in hist], color="0.6", lw=1)
        ax2.set_ylabel("learning rate", color="0.5")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())


# ----------------------------------------------------------------------------- the loop


def fit(run: Path, step: Step, tc, meta: dict, *, resume: bool = False, progress: bool = True,
        after_epoch=None, rank: int = 0, world: int = 1) -> dict:
    """Train ``step`` to the end of ``tc`` (epochs, ``max_steps`` or the time budget, or
    early stopping after ``patience`` epochs without a better held-out score); returns
    the summary (also ``summary.json``). ``meta`` is saved with every checkpoint;
    ``after_epoch(run, epoch)`` may draw samples. The caller holds :func:`run_lock`."""
    from tqdm import tqdm

    is_main = rank == 0
    family = meta["family"]
    model, opt = step.model, step.opt
    state: dict = {"epoch": 0, "step": 0, "best_valid": None, "bad_epochs": 0, "history": [], "train_seconds": 0.0,
                   "planned_steps": None, "planned_minutes": None}
    if resume:
        last = last_checkpoint(run)
        load_weights(model, last)
        state.update(load_trainer(opt, last))
        if state.get("best_valid") == float("inf"):  # older runs wrote "no score yet" as infinity
            state["best_valid"] = None
    spe = max(1, int(step.steps_per_epoch))
    total = spe * tc.epochs
    if tc.max_steps:
        total = min(total, tc.max_steps)
    if tc.max_minutes and state["planned_steps"] and state["planned_minutes"] != tc.max_minutes:
        # a resumed run given another budget: re-plan from the pace saved in the checkpoint
        state["planned_steps"] = planned_steps(state["step"], state["train_seconds"], tc.max_minutes, total)
        state["planned_minutes"] = tc.max_minutes
    if not tc.max_minutes:
        state["planned_steps"] = state["planned_minutes"] = None
    # the name of the score that chooses best/ (the first a step's validate returns); a resumed
    # run that ends before validating again takes it from its history
    score_name: list[str] = [k for k in (state["history"][-1] if state["history"] else {})
                             if k.startswith("valid_")][:1]

    def end() -> int:
        return min(total, state["planned_steps"] or total)

    def save(name: str, with_trainer: bool) -> None:
        if not is_main:
            return
        best = state["best_valid"]
        metrics = {"step": state["step"], "epoch": state["epoch"], "best_valid": best,
                   **({f"best_{score_name[0]}": best} if score_name else {})}
        write_checkpoint(run / name, model, dict(meta, train=asdict(tc), metrics=metrics),
                         optimizer=opt if with_trainer else None, trainer=state if with_trainer else None)

    if is_main:
        run.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=end(), initial=min(state["step"], end()), desc=f"train {family}", unit="step",
               disable=not (progress and is_main), dynamic_ncols=True)
    fake_step = float(os.environ.get("TUNESMITH_STEP_SECONDS", "0"))  # a steady clock for tests
    crash_at = int(os.environ.get("TUNESMITH_CRASH_AT_STEP", "0"))  # fault injection for tests (like kill -9)
    t_start = time.perf_counter() - state["train_seconds"]
    stop = "epochs done" if total == spe * tc.epochs else "max steps"
    model.train()
    logs: dict[str, float] = {}
    while state["step"] < end():
        s = state["step"]
        for group in opt.param_groups:
            group["lr"] = lr_at(s, end(), tc.lr, _lr_warmup(tc), getattr(tc, "min_lr_ratio", 1.0))
        g = np.random.default_rng([tc.seed, s, rank])
        tg = torch.Generator().manual_seed(int(g.integers(2**62)))
        torch.manual_seed(int(g.integers(2**62)))  # dropout and anything else drawn from torch's own generator
        logs = step(s, g, tg)
        state["step"] = s + 1
        state["train_seconds"] = (state["step"] * fake_step if fake_step else time.perf_counter() - t_start)
        if tc.max_minutes and state["planned_steps"] is None and (state["step"] >= PROBE_STEPS or state["epoch"]):
            state["planned_steps"] = planned_steps(state["step"], state["train_seconds"], tc.max_minutes, total)
            state["planned_minutes"] = tc.max_minutes
            bar.total = end()
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
        if crash_at and state["step"] == crash_at:
            os._exit(137)
        if state["step"] % tc.checkpoint_every == 0:
            save("last", True)
        overrun = bool(tc.max_minutes) and state["train_seconds"] > OVERRUN * tc.max_minutes * 60
        finished = state["step"] >= end() or overrun
        if state["step"] % spe and not finished:
            continue
        # the end of an epoch, or of the run inside one: validate, choose best/, write it all down
        state["epoch"] = -(-state["step"] // spe)
        val = step.validate(progress and is_main) if is_main else {}
        if val and not score_name:
            score_name.append(next(iter(val)))
        row = {"epoch": state["epoch"], "step": state["step"], "lr": opt.param_groups[0]["lr"],
               "seconds": round(state["train_seconds"], 1),
               "seconds_per_step": round(state["train_seconds"] / max(1, state["step"]), 4),
               **{k: round(float(v), 4) for k, v in logs.items()}, **{k: round(float(v), 4) for k, v in val.items()}}
        score = next(iter(val.values()), None)
        improved = score is None or state["best_valid"] is None or score < state["best_valid"]
        if improved:
            state["best_valid"] = None if score is None else float(score)
            state["bad_epochs"] = 0
            save("best", False)
        else:
            state["bad_epochs"] += 1
        state["history"].append(row)
        save("last", True)
        if is_main:
            write_history(run, state["history"])
            if after_epoch is not None:
                after_epoch(run, state["epoch"])
        bar.write(f"epoch {state['epoch']}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "step", "lr", "seconds_per_step"))
            + (" *" if improved and score is not None else ""))
        patience = getattr(tc, "patience", None)
        stop_now = torch.tensor([1.0 if patience and state["bad_epochs"] >= patience else 0.0])
        if world > 1:
            dist.broadcast(stop_now, src=0)
        if stop_now.item():
            stop = "early stopping"
            break
        if overrun:
            stop = "time limit"
            break
        if state["planned_steps"] and state["step"] >= end():
            stop = "time limit"
    bar.close()
    summary = {"run": str(run), "family": family, "stop_reason": stop, "steps": state["step"],
               "epochs": state["epoch"], "planned_steps": state["planned_steps"],
               "best_valid": state["best_valid"], **({f"best_{score_name[0]}": state["best_valid"]} if score_name else {}),
               "seconds": round(state["train_seconds"], 1),
               "seconds_per_step": round(state["train_seconds"] / max(1, state["step"]), 4),
               "n_params": sum(p.numel() for p in model.parameters())}
    if is_main:
        write_json(run / "summary.json", summary)
    if world > 1:
        dist.barrier()
    return summary
