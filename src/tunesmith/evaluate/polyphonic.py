"""The Boulanger-Lewandowski polyphonic benchmark: NLL in nats per frame.

Frames become frame tokens (sorted active pitches, then end-of-frame); with
the grammar mask the model is a proper distribution over binary frames, so the
sum of a frame's token NLLs is exactly −log p(frame | earlier frames).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from tunesmith.errors import BadInputError
from tunesmith.represent import frames
from tunesmith.train.data import TokenCorpus

KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}


def published_results(mat_path: str | Path) -> dict[str, float]:
    """The published test NLLs (nats/frame) for this data file, read from the table in
    the README.md beside it (the benchmark's own copy; tunesmith keeps none). Columns
    are matched to the file by name (``JSB`` for ``JSB_Chorales.mat``). Empty when
    there is no such README or column (any other file of this layout)."""
    readme = Path(mat_path).with_name("README.md")
    stem = Path(mat_path).stem.lower()
    if not readme.is_file():
        return {}
    out: dict[str, float] = {}
    col = None
    for line in readme.read_text(encoding="utf-8", errors="replace").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
        if cells is None:
            col = None
            continue
        if col is None:
            names = [c.lower() for c in cells]
            if names and names[0] == "model":
                col = next((k for k, n in enumerate(names) if k and n and stem.startswith(n)), None)
            continue
        if col < len(cells):
            try:
                out[cells[0]] = float(cells[col].replace("*", "").strip())
            except ValueError:
                continue
    return out


def load_mat(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Read a benchmark ``.mat`` file: per split, a list of (T, 88) binary rolls."""
    import scipy.io

    p = Path(path)
    if not p.is_file():
        raise BadInputError(p, "no such file")
    try:
        m = scipy.io.loadmat(str(p))
    except Exception as e:
        raise BadInputError(p, f"not a readable .mat file: {str(e)[:120]}") from None
    out = {}
    for split, key in KEYS.items():
        if key not in m:
            raise BadInputError(p, f"no '{key}' in this .mat file (expected traindata/validdata/testdata)")
        rolls = []
        for i, a in enumerate(np.ravel(m[key])):
            a = np.asarray(a)
            if a.ndim != 2 or a.shape[1] != frames.N_PITCHES:
                raise BadInputError(p, f"{key}[{i}] has shape {a.shape}, expected (T, 88)")
            rolls.append((a > 0).astype(np.uint8))
        out[split] = rolls
    return out


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def frame_corpus(rolls: dict[str, list[np.ndarray]], name: str = "") -> TokenCorpus:
    splits = {s: [np.concatenate([[frames.BOS], frames.roll_to_tokens(r)]).astype(np.int16) for r in rs]
              for s, rs in rolls.items()}
    return TokenCorpus(vocab_size=frames.VOCAB_SIZE, pad_id=frames.BOS, bos_id=frames.BOS, eos_id=frames.EOF,
                       pitch_first_id=0, n_pitch_tokens=frames.N_PITCHES, splits=splits,
                       allowed=frames.allowed_mask_table(),
                       meta={"representation": "frames", "dataset": name})


@torch.no_grad()
def nll_per_frame(model, corpus: TokenCorpus, split: str, *, seq_len: int | None = None,
                  batch_tokens: int = 16_384) -> tuple[float, int]:
    """Total −log p of every frame of a split, divided by its number of frames; and that number.

    Each piece is scored in one pass when it fits ``seq_len`` (default: the Transformer's
    block; unlimited for the recurrent models). A longer piece is scored with a sliding
    window of that length moving by half of it: each token is predicted once, with at
    least half a window of context (the usual way to score a fixed-context model)."""
    model.eval()
    allowed = torch.from_numpy(corpus.allowed)
    total = 0.0
    limit = seq_len or getattr(model.config, "block_size", None) or 100_000
    seqs = corpus.splits[split]
    n_frames = sum(int((s == frames.EOF).sum()) for s in seqs)
    # Pieces that fit: in batches of similar length (padding after the end changes nothing
    # before it in a causal model, and padded targets are not counted).
    short = sorted((s for s in seqs if len(s) <= limit), key=len, reverse=True)  # longest of a batch first
    i = 0
    while i < len(short):
        n = max(1, min(batch_tokens // len(short[i]), len(short) - i))
        group = short[i : i + n]
        i += n
        T = max(len(s) for s in group)
        x = torch.full((len(group), T), corpus.pad_id, dtype=torch.long)
        keep = torch.zeros(len(group), T - 1, dtype=torch.bool)
        for b, s in enumerate(group):
            x[b, : len(s)] = torch.from_numpy(s.astype(np.int64))
            keep[b, : len(s) - 1] = True
        logits, _ = model(x[:, :-1], allowed=allowed)
        lp = torch.log_softmax(logits.float(), -1).gather(-1, x[:, 1:, None])[..., 0]
        total -= float(lp[keep].sum())
    for s in seqs:
        if len(s) <= limit:
            continue
        x = torch.from_numpy(s.astype(np.int64))[None]
        stride = limit // 2
        done = 1  # tokens 1..done-1 are scored
        while done < len(s):
            stop = min(len(s), max(done + stride, limit))
            start = max(0, stop - limit)
            logits, _ = model(x[:, start : stop - 1], allowed=allowed)
            lp = torch.log_softmax(logits.float(), -1).gather(-1, x[:, start + 1 : stop, None])[0, :, 0]
            total -= float(lp[done - start - 1 :].sum())  # targets start+1..stop-1; keep those ≥ done
            done = stop
    return total / max(n_frames, 1), n_frames


FIRST_PIECES = 8  # the fixed subset a test re-scores (the whole split is make bench's)


def nll_first_test_pieces(model, corpus: TokenCorpus, n: int = FIRST_PIECES) -> tuple[float, int]:
    """:func:`nll_per_frame` over the first ``n`` pieces of the test split only."""
    import dataclasses

    return nll_per_frame(model, dataclasses.replace(corpus, splits={"test": corpus.splits["test"][:n]}), "test")


def bench_nll(data: str | Path, *, checkpoint: str | None = None, family: str | None = None, size: str = "small",
              overrides: dict | None = None, train_minutes: float = 10.0, epochs: int = 200, batch_size: int = 16,
              lr: float = 2e-3, augment_transpose: bool = False, out: str | Path | None = None,
              resume: bool = False, seed: int = 0, progress: bool = True) -> tuple[dict, Path]:
    """The benchmark end to end: train a frame-token model on a ``.mat`` file's train split
    (checkpoint chosen on valid) — or take ``checkpoint`` (a run, a checkpoint folder or a
    shipped benchmark checkpoint's name) — then score valid and test. Writes
    ``bench_nll.json`` into the run folder; returns the result and that folder."""
    import sys
    import time

    from tunesmith.errors import ParameterError
    from tunesmith.fileio import write_json
    from tunesmith.models import registry
    from tunesmith.models.checkpoint import load_weights, read_config
    from tunesmith.train.trainer import TrainConfig, train

    rolls = load_mat(data)
    name = Path(data).stem
    corpus = frame_corpus(rolls, name)
    sha = file_sha256(data)
    if checkpoint:
        try:
            ckpt = registry.resolve(checkpoint)
        except ParameterError as e:
            raise ParameterError("checkpoint", e.problem) from None
        run = Path(out) if out else (ckpt.parent if Path(checkpoint).exists() else Path(f"runs/bench-{name}-{checkpoint}"))
        cfg = read_config(ckpt)
        if cfg.get("representation", {}).get("representation") != "frames":
            raise ParameterError("checkpoint", f"{ckpt} was not trained on frame tokens")
        trained_on = cfg.get("benchmark", {}).get("sha256")
        if trained_on and trained_on != sha:
            print(f"note: {ckpt} was trained on another file than {data} (sha256 differs)", file=sys.stderr)
        fam = cfg["family"]
        model = registry.build(fam, cfg["model"])
        load_weights(model, ckpt)
        train_info = {"checkpoint": str(ckpt), "train_seconds": cfg.get("metrics", {}).get("train_seconds")}
    else:
        run = Path(out or f"runs/bench-{name}-{family or 'lstm'}")
        if family is None:  # the run's own family when resuming, else the default
            last = run / "last" / "config.json"
            family = read_config(run / "last")["family"] if resume and last.is_file() else "lstm"
        cfg = registry.make_config(family, frames.VOCAB_SIZE, size, **(overrides or {}))
        tc = TrainConfig(epochs=epochs, batch_size=batch_size, seq_len=512, lr=lr, max_minutes=train_minutes,
                         patience=10, augment_transpose=augment_transpose, seed=seed, checkpoint_every=500)
        if resume and (run / "last" / "config.json").is_file():
            if read_config(run / "last").get("benchmark", {}).get("sha256") != sha:
                raise ParameterError("data", f"{data} is not the file the run in {run} was trained on")
        summary = train(run, family, cfg, corpus, tc, progress=progress, resume=resume,
                        extra={"benchmark": {"data": str(data), "sha256": sha}})
        ckpt = run / "best"
        saved = read_config(ckpt)
        fam = saved["family"]
        model = registry.build(fam, saved["model"])
        load_weights(model, ckpt)
        train_info = {"train_seconds": summary["seconds"], "steps": summary["steps"], "stop": summary["stop_reason"],
                      "threads": torch.get_num_threads()}
    t0 = time.perf_counter()  # evaluation only, not training
    valid, nv = nll_per_frame(model, corpus, "valid")
    test, nt = nll_per_frame(model, corpus, "test")
    first, nf = nll_first_test_pieces(model, corpus)
    saved = read_config(ckpt)
    result = {"data": str(data), "data_sha256": sha, "family": fam, "model": saved["model"],
              "valid_nll_per_frame": valid, "test_nll_per_frame": test, "valid_frames": nv, "test_frames": nt,
              "test_first_pieces": {"pieces": FIRST_PIECES, "nll_per_frame": first, "frames": nf},
              "eval_seconds": round(time.perf_counter() - t0, 1),
              "augment_transpose": saved.get("train", {}).get("augment_transpose"), **train_info}
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / "bench_nll.json", result)
    return result, run
