"""Token corpora for the sequence models, and length-bucketed batches.

A :class:`TokenCorpus` holds, per split, one token array per piece
(``BOS … EOS``), plus what training needs to know about the vocabulary: the
padding id, the contiguous block of pitch tokens (for transposition
augmentation) and, for grammars such as frame tokens, the table of allowed
successors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


@dataclass
class TokenCorpus:
    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int
    pitch_first_id: int  # id of the lowest pitch token
    n_pitch_tokens: int
    splits: dict[str, list[np.ndarray]]
    allowed: np.ndarray | None = None  # (V, V) bool or None
    meta: dict = field(default_factory=dict)

    def n_tokens(self, split: str) -> int:
        return int(sum(len(s) for s in self.splits.get(split, [])))


def read_split_cache(cache: Path, name: str) -> tuple[dict[str, list[np.ndarray]], dict]:
    """Per split, the pieces stored by :func:`write_split_cache` (cut along the last axis),
    and any extra arrays stored beside them."""
    z = np.load(cache, allow_pickle=False)
    out = {}
    for s in ("train", "valid", "test"):
        flat, offs = z[f"{s}_{name}"], z[f"{s}_offsets"]
        out[s] = [flat[..., offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]
    extra = {k: z[k] for k in z.files if not k.endswith(("_" + name, "_offsets"))}
    return out, extra


def write_split_cache(cache: Path, name: str, splits: dict[str, list[np.ndarray]], empty: np.ndarray,
                      **extra) -> None:
    """Per split, the pieces concatenated along their last axis with their offsets, in one
    .npz written atomically (``empty``: what an empty split holds)."""
    arrays = dict(extra)
    for s in ("train", "valid", "test"):
        seqs = splits.get(s, [])
        arrays[f"{s}_{name}"] = np.concatenate(seqs, axis=-1) if seqs else empty
        arrays[f"{s}_offsets"] = np.cumsum([0] + [x.shape[-1] for x in seqs])
    from tunesmith.fileio import write_npz

    write_npz(cache, **arrays)


MIN_STYLE_PIECES = 60  # a region needs this many training pieces for a token of its own
OTHER_REGION = "other"


def style_vocabulary(dataset) -> list[str]:
    """The style tokens of a dataset, in id order: ``collection:NAME`` for every collection in
    its training split, then ``region:NAME`` for the regions with at least
    :data:`MIN_STYLE_PIECES` training pieces, ``region:other`` and ``region:none``."""
    from collections import Counter

    from tunesmith.music.corpora import NO_REGION, style_of

    tags = [style_of(e, dataset.name) for e in dataset.split("train")]
    collections = sorted({c for c, _ in tags})
    counts = Counter(r for _, r in tags if r != NO_REGION)
    regions = sorted(r for r, n in counts.items() if n >= MIN_STYLE_PIECES and r != OTHER_REGION)
    return ([f"collection:{c}" for c in collections] + [f"region:{r}" for r in regions]
            + [f"region:{OTHER_REGION}", f"region:{NO_REGION}"])


def style_ids(entry: dict, dataset_name: str, styles: list[str], first_id: int) -> list[int]:
    """The two style tokens of a dataset entry (collection, region), as ids from ``first_id``;
    a rare region becomes ``region:other``. A piece from outside the model's collections (a
    listener's liked pieces when fine-tuning) gets none: it teaches the music, not a style."""
    from tunesmith.music.corpora import style_of

    collection, region = style_of(entry, dataset_name)
    if f"collection:{collection}" not in styles:
        return []
    r = f"region:{region}" if f"region:{region}" in styles else f"region:{OTHER_REGION}"
    return [first_id + styles.index(f"collection:{collection}"), first_id + styles.index(r)]


def event_corpus(dataset, tokenizer, *, progress: bool = True, styles: list[str] | None = None) -> TokenCorpus:
    """Tokenize a prepared dataset with an :class:`EventTokenizer`, cached beside it.

    With ``styles`` (see :func:`style_vocabulary`), every piece starts ``BOS, collection,
    region`` with style tokens numbered after the tokenizer's vocabulary, so a model trained on
    it can be asked for a style."""
    from tqdm import tqdm

    tok_json = json.dumps(tokenizer.to_dict(), sort_keys=True)
    key = hashlib.sha256((tok_json + dataset.manifest_hash + json.dumps(styles)).encode()).hexdigest()[:16]
    cache = Path(dataset.path) / f"tokens-{key}.npz"
    tok_file = Path(dataset.path) / "tokenizer.json"  # the tokenizer's config, beside the dataset
    if not tok_file.is_file() or tok_file.read_text() != tok_json:
        tok_file.write_text(tok_json)
    splits: dict[str, list[np.ndarray]] = {}
    if cache.is_file():
        splits, _ = read_split_cache(cache, "tokens")
    else:
        for s in ("train", "valid", "test"):
            seqs = []
            entries = dataset.split(s)
            for e in tqdm(entries, desc=f"tokenize {dataset.name} {s}", disable=not progress or not entries,
                          dynamic_ncols=True):
                ids = tokenizer.encode(dataset.load(e))
                if len(ids):
                    head = [tokenizer.bos_id]
                    if styles:
                        head += style_ids(e, dataset.name, styles, tokenizer.vocab_size)
                    seqs.append(np.concatenate([head, ids, [tokenizer.eos_id]]).astype(np.int16))
            splits[s] = seqs
        write_split_cache(cache, "tokens", splits, np.zeros(0, np.int16))
    vocab = tokenizer.tok.vocab
    meta = {"representation": "remi", "dataset": dataset.name, **dataset.hashes("dataset_")}
    if styles:
        meta["styles"] = list(styles)
    return TokenCorpus(
        vocab_size=tokenizer.vocab_size + len(styles or []), pad_id=tokenizer.pad_id, bos_id=tokenizer.bos_id,
        eos_id=tokenizer.eos_id, pitch_first_id=vocab["Pitch_21"], n_pitch_tokens=88,
        splits=splits, meta=meta,
    )


def corpus_programs(tok, corpus: TokenCorpus) -> list[int]:
    """The General MIDI programs that occur in an event-token corpus's training split
    (generation stays within them)."""
    ids = np.unique(np.concatenate(corpus.splits["train"])) if corpus.splits["train"] else []
    names = [tok.names[int(i)] for i in ids if int(i) < len(tok.names)]  # style tokens lie beyond
    return sorted(int(n.split("_")[1]) for n in names if n.startswith("Program_"))


# --------------------------------------------------------------------------- batching


def segments(seqs: list[np.ndarray], seq_len: int) -> list[tuple[int, int, int]]:
    """Cut each sequence into windows of at most ``seq_len + 1`` tokens (inputs and
    shifted targets), consecutive windows sharing one token: ``(seq, start, stop)``."""
    out = []
    for i, s in enumerate(seqs):
        n = len(s)
        if n < 2:
            continue
        start = 0
        while start < n - 1:
            stop = min(n, start + seq_len + 1)
            out.append((i, start, stop))
            start = stop - 1
    return out


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """A deterministic order of batches for one epoch: shuffle, then sort by length inside
    pools of 50 batches so that batches waste little padding, then shuffle the batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(len(lengths), generator=g).numpy()
    pool = batch_size * 50
    batches = []
    for i in range(0, len(perm), pool):
        chunk = perm[i : i + pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    order = torch.randperm(len(batches), generator=g).numpy()
    return [batches[k] for k in order]


def collate(corpus: TokenCorpus, seqs: list[np.ndarray], segs: list[tuple[int, int, int]],
            batch: np.ndarray, *, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch of segments → ``x`` (B, T) and targets ``y`` (B, T), padded with the pad id
    (targets padded with -100, which the loss ignores). With ``rng``, each segment is
    transposed by a random shift in −6…+5 semitones that keeps its pitches in range."""
    rows = [seqs[segs[k][0]][segs[k][1] : segs[k][2]].astype(np.int64) for k in batch]
    T = max(len(r) for r in rows) - 1
    x = np.full((len(rows), T), corpus.pad_id, dtype=np.int64)
    y = np.full((len(rows), T), -100, dtype=np.int64)
    lo, n = corpus.pitch_first_id, corpus.n_pitch_tokens
    for b, r in enumerate(rows):
        if rng is not None:
            is_p = (r >= lo) & (r < lo + n)
            if is_p.any():
                pmin, pmax = int(r[is_p].min() - lo), int(r[is_p].max() - lo)
                a, z = max(-6, -pmin), min(5, n - 1 - pmax)
                if z >= a:
                    shift = int(rng.integers(a, z + 1))
                    r = r.copy()
                    r[is_p] += shift
        x[b, : len(r) - 1] = r[:-1]
        y[b, : len(r) - 1] = r[1:]
    return torch.from_numpy(x), torch.from_numpy(y)


def satb_corpus(dataset, *, progress: bool = True) -> TokenCorpus:
    """SATB frame tokens (:mod:`tunesmith.represent.satb`) of a prepared dataset's four-voice
    pieces, cached beside it; pieces without exactly four voices are left out (counted in
    ``meta['skipped']``)."""
    from tqdm import tqdm

    from tunesmith.represent import satb

    key = hashlib.sha256((json.dumps(satb.describe(), sort_keys=True) + dataset.manifest_hash).encode()).hexdigest()[:16]
    cache = Path(dataset.path) / f"satb-{key}.npz"
    splits: dict[str, list[np.ndarray]] = {}
    skipped = 0
    if cache.is_file():
        splits, extra = read_split_cache(cache, "tokens")
        skipped = int(extra["skipped"])
    else:
        for s in ("train", "valid", "test"):
            seqs = []
            entries = dataset.split(s)
            for e in tqdm(entries, desc=f"satb tokens {dataset.name} {s}", disable=not progress or not entries,
                          dynamic_ncols=True):
                ids = satb.encode(dataset.load(e))
                if ids is None:
                    skipped += 1
                    continue
                seqs.append(np.concatenate([[satb.BOS], ids, [satb.EOS]]).astype(np.int16))
            splits[s] = seqs
        write_split_cache(cache, "tokens", splits, np.zeros(0, np.int16), skipped=np.array(skipped))
    if not splits["train"]:
        from tunesmith.errors import BadInputError

        raise BadInputError(dataset.path, "no four-voice pieces: SATB tokens need pieces with exactly four "
                            "voices (a chorale corpus)")
    return TokenCorpus(vocab_size=satb.VOCAB_SIZE, pad_id=satb.PAD, bos_id=satb.BOS, eos_id=satb.EOS,
                       pitch_first_id=satb.PITCH0, n_pitch_tokens=satb.N_PITCHES, splits=splits,
                       meta={"representation": "satb", "dataset": dataset.name,
                             **dataset.hashes("dataset_"), "skipped": skipped})
