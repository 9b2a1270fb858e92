"""The training loop shared by every sequence family.

One process or many (``torchrun``: DDP, gloo on CPU, NCCL on GPU; rank 0
alone writes). Deterministic data order from (seed, epoch); checkpoints of
model, optimizer, RNG and loop position every ``checkpoint_every`` steps, so
``resume`` after any kill continues exactly where the last checkpoint was.
"""

from __future__ import annotations

import csv
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from tunesmith import __version__
from tunesmith.errors import OptionError, TunesmithError
from tunesmith.fileio import write_json
from tunesmith.models.checkpoint import load_trainer, load_weights, read_config, write_checkpoint
from tunesmith.models.registry import build_model, config_from_dict, config_to_dict
from tunesmith.train.data import TokenCorpus, collate, epoch_batches, segments


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    seq_len: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    patience: int = 4  # epochs without a better validation loss before stopping
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_every: int = 200
    augment_transpose: bool = False
    seed: int = 0
    device: str = "cpu"

    def check(self) -> None:
        for name, v, lo in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                            ("--seq-len", self.seq_len, 8), ("--checkpoint-every", self.checkpoint_every, 1)):
            if v < lo:
                raise OptionError(name, f"must be at least {lo}, got {v}")
        if not (0 < self.lr <= 1):
            raise OptionError("--lr", f"must be in (0, 1], got {self.lr}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise OptionError("--train-minutes", f"must be positive, got {self.max_minutes}")


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
    keys = ("representation", "dataset", "dataset_manifest_sha256")
    was = {k: saved.get(k) for k in keys if saved.get(k) is not None}
    diff = [k for k in was if now.get(k) is not None and now.get(k) != was[k]]
    if diff:
        raise OptionError("--data", f"the run in {run} was trained on "
                          + ", ".join(f"{k} {str(was[k])[:16]}" for k in diff) + "; this data has "
                          + ", ".join(f"{k} {str(now[k])[:16]}" for k in diff) + ": start a new run (another --out)")


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str) -> tuple[int, int, str]:
    """Initialise torch.distributed when launched by torchrun; returns (rank, world, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
    rank, world = _dist_info()
    return rank, world, device


def lr_at(step: int, total: int, tc: TrainConfig, seconds: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio × lr``, by steps or — with a
    time budget (``max_minutes``) — by elapsed training time, whichever is further: a run
    that the clock will stop long before its last epoch still anneals within its budget."""
    if step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    frac = min(1.0, (step - tc.warmup_steps) / max(1, total - tc.warmup_steps))
    if tc.max_minutes:
        frac = max(frac, min(1.0, seconds / (tc.max_minutes * 60)))
    return tc.lr * (tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


@torch.no_grad()
def evaluate_nll(model, corpus: TokenCorpus, split: str, *, seq_len: int, batch_size: int = 16,
                 device: str = "cpu") -> tuple[float, int]:
    """Mean NLL per token (nats) of a split, and the number of tokens scored."""
    seqs = corpus.splits.get(split, [])
    if not seqs:
        return float("nan"), 0
    was = model.training
    model.eval()
    segs = segments(seqs, seq_len)
    allowed = torch.from_numpy(corpus.allowed).to(device) if corpus.allowed is not None else None
    total, count = 0.0, 0
    order = np.argsort([s[2] - s[1] for s in segs])
    for i in range(0, len(order), batch_size):
        x, y = collate(corpus, seqs, segs, order[i : i + batch_size])
        x, y = x.to(device), y.to(device)
        logits, _ = model(x, allowed=allowed)
        lp = torch.log_softmax(logits.float(), dim=-1)
        m = y != -100
        nll = -lp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        total += float(nll[m].sum())
        count += int(m.sum())
    model.train(was)
    return total / max(count, 1), count


def train(run_dir: str | Path, family: str, model_config, corpus: TokenCorpus, tc: TrainConfig, *,
          resume: bool = False, progress: bool = True, extra: dict | None = None,
          init_from: str | Path | None = None) -> dict:
    """Train (or resume) a sequence model; returns the final summary (also in metrics.json).
    ``init_from``: a checkpoint folder whose weights start a new run (fine-tuning); its
    architecture must be ``model_config``."""
    tc.check()
    run = Path(run_dir)
    rank, world, device = setup_distributed(tc.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("--device", "CUDA is not available on this machine")
    is_main = rank == 0
    state: dict = {"epoch": 0, "batch": 0, "step": 0, "best_valid": float("inf"), "bad_epochs": 0,
                   "history": [], "train_seconds": 0.0, "tokens_seen": 0}

    if resume:
        last = run / "last"
        if not (last / "config.json").is_file() and (run / "last.old" / "config.json").is_file():
            last = run / "last.old"
        if not (last / "config.json").is_file():
            raise TunesmithError(f"{run}: nothing to resume (no checkpoint in {run / 'last'})")
        saved = read_config(last)
        check_same_data(run, saved.get("representation") or {}, corpus.meta)
        if saved["family"] != family:
            raise OptionError("--family", f"the run in {run} is a {saved['family']} model, not {family}: resume it "
                              f"with --family {saved['family']}, or start a new run (another --out)")
        family = saved["family"]
        model_config = config_from_dict(family, saved["model"])
        saved_tc = dict(saved["train"])
        for k in ("epochs", "max_minutes", "max_steps", "device"):  # the user may extend these
            saved_tc[k] = getattr(tc, k)
        tc = TrainConfig(**saved_tc)
    elif is_main and (run / "last" / "config.json").exists():
        raise TunesmithError(f"{run}: a run is already here; pass --resume to continue it or choose another --out")

    torch.manual_seed(tc.seed)
    model = build_model(family, model_config).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, betas=(0.9, 0.98))
    if resume:
        load_weights(model, last)
        state.update(load_trainer(opt, last))
        if state.get("best_valid") is None:  # strict JSON keeps "no score yet" as null
            state["best_valid"] = float("inf")
    elif init_from is not None:
        load_weights(model, init_from)
    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model)

    train_seqs = corpus.splits["train"]
    if not train_seqs:
        raise TunesmithError("the training split is empty: the dataset needs more pieces")
    segs = segments(train_seqs, tc.seq_len)
    lengths = np.array([s[2] - s[1] for s in segs])
    steps_per_epoch = max(1, math.ceil(len(segs) / tc.batch_size) // world)
    total_steps = steps_per_epoch * tc.epochs
    if tc.max_steps:
        total_steps = min(total_steps, tc.max_steps)
    allowed = torch.from_numpy(corpus.allowed).to(device) if corpus.allowed is not None else None

    base_meta = {
        "family": family, "model": config_to_dict(model_config), "train": asdict(tc),
        "representation": corpus.meta, "code_version": __version__, "n_params": model.n_params(),
        **(extra or {}),
    }

    def save(name: str, with_trainer: bool) -> None:
        if not is_main:
            return
        meta = dict(base_meta, metrics={"best_valid_nll": state["best_valid"], "step": state["step"],
                                        "epoch": state["epoch"]})
        write_checkpoint(run / name, model, meta, optimizer=opt if with_trainer else None,
                         trainer=state if with_trainer else None)

    if is_main:
        run.mkdir(parents=True, exist_ok=True)
    lock = run_lock(run) if is_main else None
    if lock is not None:
        lock.__enter__()
    try:
        return _loop(run, family, model, ddp_model, opt, corpus, tc, state, segs, lengths, steps_per_epoch,
                     total_steps, allowed, save, is_main, rank, world, device, progress)
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)


def _loop(run, family, model, ddp_model, opt, corpus, tc, state, segs, lengths, steps_per_epoch, total_steps,
          allowed, save, is_main, rank, world, device, progress) -> dict:
    from tqdm import tqdm

    train_seqs = corpus.splits["train"]
    bar = tqdm(total=total_steps, initial=min(state["step"], total_steps), desc=f"train {family}",
               unit="step", disable=not (progress and is_main), dynamic_ncols=True)
    t_start = time.perf_counter() - state["train_seconds"]
    tok_window: list[tuple[float, int]] = []
    stop_reason = "epochs done"
    crash_at = int(os.environ.get("TUNESMITH_CRASH_AT_STEP", "0"))  # fault injection for tests
    model.train()
    while state["epoch"] < tc.epochs:
        batches = epoch_batches(lengths, tc.batch_size, tc.seed, state["epoch"])
        usable = len(batches) // world * world  # equal step counts on every rank (DDP)
        mine = batches[rank:usable:world]
        while state["batch"] < len(mine):
            if tc.max_steps and state["step"] >= tc.max_steps:
                stop_reason = "max steps"
                break
            bidx = state["batch"]
            rng = np.random.default_rng([tc.seed, state["epoch"], bidx, rank]) if tc.augment_transpose else None
            x, y = collate(corpus, train_seqs, segs, mine[bidx], rng=rng)
            x, y = x.to(device), y.to(device)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], total_steps, tc, state["train_seconds"])
            t0 = time.perf_counter()
            _, loss = ddp_model(x, y, allowed=allowed)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            ntok = int((y != -100).sum()) * world
            state["step"] += 1
            state["batch"] += 1
            state["tokens_seen"] += ntok
            tok_window = (tok_window + [(time.perf_counter() - t0, ntok)])[-50:]
            tps = sum(n for _, n in tok_window) / max(1e-9, sum(t for t, _ in tok_window))
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tps:,.0f}", epoch=state["epoch"] + 1)
            state["train_seconds"] = time.perf_counter() - t_start
            fit_bar_to_budget(bar, state["step"], total_steps, state["train_seconds"], tc.max_minutes)
            if crash_at and state["step"] == crash_at:
                os._exit(137)  # like kill -9: no cleanup, no final checkpoint
            if state["step"] % tc.checkpoint_every == 0:
                save("last", True)
            if tc.max_minutes and state["train_seconds"] > tc.max_minutes * 60:
                stop_reason = "time limit"
                break
        if stop_reason != "epochs done":
            break
        # End of epoch: validate (rank 0), decide on early stopping, checkpoint.
        state["epoch"] += 1
        state["batch"] = 0
        stop = torch.zeros(1)
        if is_main:
            vnll, _ = evaluate_nll(model, corpus, "valid", seq_len=tc.seq_len, device=device)
            tnll = float(loss.item())
            row = {"epoch": state["epoch"], "step": state["step"], "train_loss": round(tnll, 4),
                   "valid_nll": round(vnll, 4), "valid_ppl": round(math.exp(vnll), 3) if vnll == vnll else None,
                   "lr": opt.param_groups[0]["lr"], "tokens_per_s": round(tps, 1),
                   "seconds": round(state["train_seconds"], 1)}
            state["history"].append(row)
            improved = vnll < state["best_valid"] or not np.isfinite(state["best_valid"])
            if improved:
                state["best_valid"] = vnll
                state["bad_epochs"] = 0
                save("best", False)
            else:
                state["bad_epochs"] += 1
            bar.write(f"epoch {state['epoch']}: train loss {tnll:.3f}, valid nll {vnll:.3f} "
                      f"(ppl {math.exp(vnll):.2f}){' *' if improved else ''}")
            if state["bad_epochs"] >= tc.patience:
                stop[0] = 1
            save("last", True)
            _write_metrics(run, state)
        if world > 1:
            dist.broadcast(stop, src=0)
        if stop.item():
            stop_reason = "early stopping"
            break
    bar.close()
    if is_main:
        if stop_reason in ("time limit", "max steps"):
            save("last", True)
        if not (run / "best" / "config.json").exists():
            vnll, _ = evaluate_nll(model, corpus, "valid", seq_len=tc.seq_len, device=device)
            state["best_valid"] = vnll
            save("best", False)
        _write_metrics(run, state)
    summary = {"run": str(run), "stop_reason": stop_reason, "steps": state["step"], "epochs": state["epoch"],
               "best_valid_nll": state["best_valid"], "seconds": round(state["train_seconds"], 1),
               "n_params": model.n_params()}
    if is_main:
        write_json(run / "summary.json", summary)
    if world > 1:
        dist.barrier()
    return summary


def fit_bar_to_budget(bar, step: int, total: int, seconds: float, max_minutes: float | None) -> None:
    """A time-limited run's progress bar estimates against the time budget, not the epoch
    plan (which the clock will usually cut short): its total becomes the steps that fit."""
    if not max_minutes or step < 10 or step % 10:
        return
    rate = seconds / step
    left = max(0.0, max_minutes * 60 - seconds)
    bar.total = min(total, step + int(left / max(rate, 1e-9)) + 1)
    bar.refresh()


def write_history(run: Path, hist: list[dict]) -> None:
    """A run's per-epoch rows as metrics.json and metrics.csv (every key any row has;
    the CSV replaced atomically). Shared by all trainers; each plots its own curves."""
    write_json(run / "metrics.json", hist)
    if not hist:
        return
    keys = list(dict.fromkeys(k for r in hist for k in r))
    with open(run / "metrics.csv.part", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(hist)
    os.replace(run / "metrics.csv.part", run / "metrics.csv")


def _write_metrics(run: Path, state: dict) -> None:
    hist = state["history"]
    write_history(run, hist)
    if hist:
        plot_curves(hist, run / "curves.png")


def plot_curves(hist: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in hist]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(ep, [h["train_loss"] for h in hist], "o-", label="train loss (last batch)")
    ax.plot(ep, [h["valid_nll"] for h in hist], "s-", label="valid NLL / token")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
