"""Sequence families (RNN, GRU, LSTM, Transformer over event, SATB or frame tokens): their
settings, their step for the one loop (:mod:`tunesmith.train.loop`) and their held-out NLL."""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tunesmith import __version__
from tunesmith.errors import OptionError, TunesmithError
from tunesmith.models.checkpoint import load_weights
from tunesmith.models.registry import build_model, config_from_dict, config_to_dict
from tunesmith.train.data import TokenCorpus, collate, epoch_batches, segments
from tunesmith.train.loop import (
    begin,
    check_settings,
    fit,
    run_lock,
    setup_distributed,
    sync_gradients,
)


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
    unlikelihood: float = 0.0  # SATB tokens: weight of the parallel-fifths/octaves unlikelihood term
    seed: int = 0
    device: str = "cpu"

    def check(self) -> None:
        check_settings(self)
        if self.seq_len < 8:
            raise OptionError("--seq-len", f"must be at least 8, got {self.seq_len}")
        if not 0 <= self.unlikelihood <= 100:
            raise OptionError("--unlikelihood", f"must be in [0, 100], got {self.unlikelihood}")


@torch.no_grad()
def evaluate_nll(model, corpus: TokenCorpus, split: str, *, seq_len: int, batch_size: int = 16,
                 device: str = "cpu", progress: bool = False) -> tuple[float, int]:
    """Mean NLL per token (nats) of a split, and the number of tokens scored."""
    from tqdm import tqdm

    seqs = corpus.splits.get(split, [])
    if not seqs:
        return float("nan"), 0
    was = model.training
    model.eval()
    segs = segments(seqs, seq_len)
    allowed = torch.from_numpy(corpus.allowed).to(device) if corpus.allowed is not None else None
    total, count = 0.0, 0
    order = np.argsort([s[2] - s[1] for s in segs])
    for i in tqdm(range(0, len(order), batch_size), desc=f"validate ({split})", unit="batch", leave=False,
                  disable=not progress, dynamic_ncols=True):
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
    """Train (or resume) a sequence model through the one loop (:func:`tunesmith.train.loop.fit`);
    returns the summary (also summary.json). ``init_from``: a checkpoint folder whose weights
    start a new run (fine-tuning); its architecture must be ``model_config``."""
    tc.check()
    run = Path(run_dir)
    rank, world, device = setup_distributed(tc.device)
    with run_lock(run) if rank == 0 else nullcontext():
        tc, saved = begin(run, family, tc, resume=resume, data=corpus.meta) if rank == 0 or resume else (tc, None)
        if saved is not None:
            model_config = config_from_dict(family, saved["model"])
        torch.manual_seed(tc.seed)
        model = build_model(family, model_config).to(device)
        if init_from is not None and not resume:
            load_weights(model, init_from)
        step = SequenceStep(model, corpus, tc, device=device, rank=rank, world=world)
        meta = {"family": family, "model": config_to_dict(model_config), "representation": corpus.meta,
                "code_version": __version__, "n_params": model.n_params(), **(extra or {})}
        return fit(run, step, tc, meta, resume=resume, progress=progress, rank=rank, world=world)


class SequenceStep:
    """A language model's step: a batch of token windows in a fixed order per epoch (shuffled
    by (seed, epoch), similar lengths together), optional random transposition, AdamW
    with weight decay on matrices only, gradient clipping. Held-out score: valid NLL."""

    def __init__(self, model, corpus: TokenCorpus, tc: TrainConfig, *, device: str = "cpu", rank: int = 0,
                 world: int = 1):
        self.model, self.corpus, self.tc, self.device, self.rank, self.world = model, corpus, tc, device, rank, world
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, betas=(0.9, 0.98))
        self.seqs = corpus.splits["train"]
        if not self.seqs:
            raise TunesmithError("the training split is empty: the dataset needs more pieces")
        self.segs = segments(self.seqs, tc.seq_len)
        self.lengths = np.array([s[2] - s[1] for s in self.segs])
        self.allowed = torch.from_numpy(corpus.allowed).to(device) if corpus.allowed is not None else None
        self.steps_per_epoch = max(1, len(epoch_batches(self.lengths, tc.batch_size, tc.seed, 0)) // world)
        self._epoch, self._mine = -1, []

    def __call__(self, step: int, g: np.random.Generator, tg: torch.Generator) -> dict[str, float]:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            batches = epoch_batches(self.lengths, self.tc.batch_size, self.tc.seed, epoch)
            usable = len(batches) // self.world * self.world  # equal step counts on every rank
            self._mine, self._epoch = batches[self.rank:usable:self.world], epoch
        x, y = collate(self.corpus, self.seqs, self.segs, self._mine[i % len(self._mine)],
                       rng=g if self.tc.augment_transpose else None)
        x, y = x.to(self.device), y.to(self.device)
        logits, loss = self.model(x, y, allowed=self.allowed)
        out = {"train_loss": loss.item()}
        if self.tc.unlikelihood:
            from tunesmith.train.unlikelihood import negatives_mask, unlikelihood_loss

            ul = unlikelihood_loss(logits, negatives_mask(x, y), int((y != -100).sum()))
            loss = loss + self.tc.unlikelihood * ul
            out["train_unlikelihood"] = ul.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(self.model.parameters())
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.grad_clip)
        self.opt.step()
        return out

    def validate(self, progress: bool) -> dict[str, float]:
        vnll, n = evaluate_nll(self.model, self.corpus, "valid", seq_len=self.tc.seq_len, device=self.device,
                               progress=progress)
        if not n:
            return {}
        out = {"valid_nll": vnll, "valid_ppl": math.exp(vnll)}
        if self.corpus.meta.get("representation") == "satb":  # a signal to watch: parallels offered
            from tunesmith.train.unlikelihood import parallel_scores

            windows = [s[: self.tc.seq_len + 1] for s in self.corpus.splits["valid"]]
            ps = parallel_scores(self.model, windows, allowed=self.allowed)
            out["valid_parallel_mass"] = ps["mass"]
            if self.tc.unlikelihood:  # best/ is chosen on the objective the run trains (first key)
                out = {"valid_objective": vnll + self.tc.unlikelihood * ps["unlikelihood"],
                       "valid_unlikelihood": ps["unlikelihood"], **out}
        return out
