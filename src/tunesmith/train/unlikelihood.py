"""Unlikelihood for parallel fifths and octaves in SATB frame tokens.

Teacher-forced on real chorales a chorale LSTM's next-token probabilities are close to Bach's,
yet sampled freely it writes parallel fifths and octaves some thirty times as often as he did
(exposure bias: its own contexts are not his). Token-level unlikelihood training (Welleck et
al., "Neural text generation with unlikelihood training", ICLR 2020) adds to the likelihood a
term −log(1 − p(negatives)) that pushes probability away from a set of *negative candidates*
at each position. Here the negatives are the pitches that would move a voice in parallel
fifths, octaves or unisons with a voice above it already written in the same frame — the rule
of :class:`tunesmith.generate.rules.FourPartRules`, now taught to the model rather than only
enforced on it. The contexts are the training chorales' (teacher-forced), not the model's own
samples: on both the bundled model puts about as much probability on these pitches (5.0% and
6.3% where one is possible), so the real contexts carry the signal.

The rule is written here over whole token windows (numpy), not through ``FourPartRules``,
which judges one candidate list at a time while sampling; a test checks that both agree.
"""

from __future__ import annotations

import numpy as np
import torch

from tunesmith.represent import satb

PERFECT = (7, 0)  # fifths; octaves and unisons


def parallel_negatives(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a window of SATB frame tokens (it may begin mid-frame), the positions ``i`` whose
    token is a voice's and the (n, N_PITCHES) bool table of pitch tokens that, written at ``i``,
    would make parallel fifths/octaves/unisons with a voice above (already written in that
    frame) moving the same way from the previous frame.

    Voices whose sounding pitch is not known yet in the window (before their first pitch or
    rest token) are skipped, as are rests: a rest makes no parallel."""
    toks = np.asarray(tokens, np.int64)
    is_pos = (toks >= satb.POS0) & (toks < satb.HOLD)
    snd = np.full(4, -2, np.int64)  # −2: unknown, −1: rest
    prev = np.full(4, -2, np.int64)  # sounding at the previous frame
    v = -1
    pos_out: list[int] = []
    neg_out: list[np.ndarray] = []
    cand = np.arange(satb.PITCH_LO, satb.PITCH_HI)
    for i, t in enumerate(toks):
        if is_pos[i]:
            prev = snd.copy()
            v = 0
            continue
        if v < 0 or v > 3:
            continue
        # the candidates for voice v at i, given voices 0..v-1 already written in this frame
        if prev[v] >= 0:
            bad = np.zeros(len(cand), bool)
            a_v = prev[v]
            dv = cand - a_v
            for u in range(v):
                c_u, a_u = snd[u], prev[u]
                if c_u < 0 or a_u < 0 or c_u == a_u:
                    continue
                du = c_u - a_u
                iv_a = (a_u - a_v) % 12
                if iv_a not in PERFECT:
                    continue
                bad |= (dv != 0) & (np.sign(dv) == np.sign(du)) & ((c_u - cand) % 12 == iv_a)
            if bad.any():
                pos_out.append(i)
                neg_out.append(bad)
        # then the token written at i becomes voice v's sounding pitch
        if t == satb.REST:
            snd[v] = -1
        elif t >= satb.PITCH0:
            snd[v] = int(t - satb.PITCH0 + satb.PITCH_LO)
        elif t == satb.HOLD:
            snd[v] = prev[v]
        v += 1
    if not pos_out:
        return np.zeros(0, np.int64), np.zeros((0, len(cand)), bool)
    return np.array(pos_out), np.stack(neg_out)


def negatives_mask(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, T, V) bool: for a batch of inputs ``x`` and targets ``y`` (−100 = padding), the
    tokens to push away from at each prediction — never the target itself (where Bach wrote
    a parallel, the model is not taught to avoid what he wrote)."""
    B, T = x.shape
    mask = np.zeros((B, T, satb.VOCAB_SIZE), bool)
    xn, yn = x.cpu().numpy(), y.cpu().numpy()
    for b in range(B):
        n = int((yn[b] != -100).sum())
        if n == 0:
            continue
        window = np.concatenate([xn[b, :1], yn[b, :n]])  # token k of the window is predicted at k−1
        pos, neg = parallel_negatives(window)
        keep = pos >= 1
        pos, neg = pos[keep], neg[keep]
        mask[b, pos - 1, satb.PITCH0:] = neg
    tgt = np.where(yn >= 0, yn, 0)
    np.put_along_axis(mask, tgt[..., None], False, axis=-1)
    return torch.from_numpy(mask).to(x.device)


def unlikelihood_loss(logits: torch.Tensor, negatives: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Σ over positions of −log(1 − p(negatives)), divided by ``n_tokens`` (the likelihood
    term's count, so the weight means the same for any batch)."""
    lp = torch.log_softmax(logits.float(), dim=-1)
    p_neg = torch.where(negatives, lp.exp(), torch.zeros((), device=lp.device)).sum(-1)
    has = negatives.any(-1)
    ul = -torch.log1p(-p_neg[has].clamp(max=1 - 1e-5))
    return ul.sum() / max(n_tokens, 1)


@torch.no_grad()
def parallel_scores(model, windows: list[np.ndarray], *, allowed: torch.Tensor | None = None) -> dict[str, float]:
    """Read teacher-forced over token windows: ``mass``, the model's mean probability on
    parallel-making pitches where one is possible (a training signal to watch); ``unlikelihood``,
    the unlikelihood term per token as training computes it; ``positions``, how many such
    places the windows hold."""
    total, count, ul, n_tok = 0.0, 0, 0.0, 0
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    for w in windows:
        x = torch.from_numpy(np.asarray(w[:-1], np.int64))[None].to(dev)
        y = torch.from_numpy(np.asarray(w[1:], np.int64))[None].to(dev)
        neg = negatives_mask(x, y)
        logits, _ = model(x, allowed=allowed)
        p = torch.softmax(logits.float(), dim=-1)
        has = neg.any(-1)
        total += float((p * neg).sum(-1)[has].sum())
        count += int(has.sum())
        ul += float(unlikelihood_loss(logits, neg, 1))
        n_tok += int(y.numel())
    model.train(was)
    return {"mass": total / max(count, 1), "unlikelihood": ul / max(n_tok, 1), "positions": count}

