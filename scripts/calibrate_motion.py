"""Fit an SATB chorale model's motion calibration on its *training* chorales.

A chorale token model sampled freely drifts from what it does teacher-forced: the bundled
LSTM restrikes the sounding pitch more often than Bach (its bass about twice as often),
holds its notes longer and leaps by thirds more often, although on held-out
chorales its next-token probabilities for exactly these motions are right (exposure bias).
This script fits one logit offset per voice for each melodic step from the sounding note
(−12…+12 semitones) and for holding it (:data:`tunesmith.generate.chorale.MOTION_BINS`),
by iterative proportional fitting: generate pieces (seeds 1000 on, not the benchmark's
0…n−1; under ``--rules``, strict by default), count each voice's motions per frame with a sounding note, and
move each offset by ``rate`` × log(training rate / sampled rate). The last bar of a sample
(the cadence the rules write) is not counted, nor, like with like, a training chorale's.

Then, as ``choose_top_p.py`` does, it compares the pieces sampled with and without the fitted
offsets against two draws of crops of the training chorales on the fair yardstick, and
``--write`` stores the offsets in the model's config.json (``sampling.motion_bias``) only
when the calibrated pieces are the harder to tell from Bach. ``benchmarks/quality.py``
then measures on held-out chorales, which this script never reads.

``--voicing`` fits the sampler's voice-leading weights too (``sampling.voicing``; see
the comment above ``CAPABILITIES`` in ``tunesmith/generate/chorale.py``): first by maximum likelihood on the training
chorales with the network fixed (it prints the NLL per voice token before and after, on the
training and the validation chorales), then in the same rounds as the motion offsets, each
weight moved by ``rate`` × log(training rate / sampled rate) of choosing a note that fails
its check, per voice — on pieces sampled without rules, where the sampler uses them (under
strict rules the masks decide).

``--degrees`` (strict rules) fits the scale-degree offsets too (``sampling.degree_bias``; see
the comment above ``DEGREE_MODES`` in ``tunesmith/generate/chorale.py``), in the same rounds: per
mode, each of the twelve pitch classes counted from the tonic of the key the rules hold a sampled
piece to, moved by ``rate`` × log(training share / sampled share) of the notes on it — the
training chorales' notes counted from their stated key. The check then also measures the
fitted motion offsets alone, and ``--write`` stores both only when the pieces with both are
the hardest to tell from Bach.

``--rules off`` fits the offsets the sampler uses without rules (``sampling.motion_bias_off``)
on pieces sampled without rules; ``--voicing`` (only with it) fits the weights in the same rounds.
``--harmonize --rules off`` fits the weights used when harmonizing without rules
(``sampling.voicing_harmonize``) on harmonizations of the training sopranos (see :func:`fit_harmonize`).

    python scripts/calibrate_motion.py bach-chorales [--n 100] [--iters 5] [--degrees | --rules off [--voicing | --harmonize]] [--write]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np


def grid_of(score, *, last_bar: bool = True) -> tuple[np.ndarray, slice] | None:
    """The piece's (4, T) voice tokens and the frames to count (without its last bar unless
    ``last_bar``); None without four voices."""
    from tunesmith.represent import satb

    ids = satb.encode(score)
    if ids is None:
        return None
    grid = ids[1:].reshape(-1, satb.FRAME)[:, 1:].T
    per_bar = satb.bar_steps(satb.METERS[int(ids[0]) - satb.METER0])
    return grid, slice(0, grid.shape[1] if last_bar else max(grid.shape[1] - per_bar, 0))


def rates(grids) -> tuple[np.ndarray, np.ndarray]:
    """Per voice, each motion's share of the frames with a sounding note before them; counts."""
    from tunesmith.generate.chorale import MOTION_BINS, motion_counts

    counts, frames = np.zeros((4, MOTION_BINS)), np.zeros(4)
    for g in grids:
        if g is None:
            continue
        c, f = motion_counts(*g)
        counts += c
        frames += f
    return counts / np.maximum(frames, 1)[:, None], counts


def meter_target(meter_rates: dict, sampled: Counter) -> tuple[np.ndarray, np.ndarray]:
    """The training rates the sampled pieces should have: each meter's rates, weighted by how
    many sampled pieces are in it (meters the training set lacks are left out), and the
    training counts behind them."""
    known = {mt: k for mt, k in sampled.items() if mt in meter_rates}
    if not known:
        raise SystemExit(f"calibrate_motion.py: the sampled meters ({', '.join(map(str, sampled))}) are in no "
                         "training chorale")
    total = sum(known.values())
    target = sum(meter_rates[mt][0] * (k / total) for mt, k in known.items())
    counts = sum(meter_rates[mt][1] for mt in known)
    return target, counts


def training_rates(refs) -> dict:
    """Per meter, the training chorales' motion rates and counts (see :func:`rates`), counted
    like the sampled pieces: without the last bar. Bach's final cadences hold their notes
    longer (4/4 holds S A T B 0.761 0.723 0.712 0.707 with them, 0.755 0.717 0.709 0.700
    without), and counting them asked the sampler's middle bars for too few notes."""
    from tunesmith.evaluate.fair import meter_of

    by_meter: dict = {}
    for s in refs:
        by_meter.setdefault(meter_of(s), []).append(grid_of(s, last_bar=False))
    return {mt: rates(gs) for mt, gs in by_meter.items() if mt is not None}


def motion_step(target: np.ndarray, got: np.ndarray, tcounts: np.ndarray, gcounts: np.ndarray) -> np.ndarray:
    """One round's change of the (4, MOTION_BINS) offsets: log(training rate / sampled rate) for
    each motion both make often enough, +0.5 for one the training pieces make and the sampler
    hardly does; for holding (the last bin), the difference of the log odds. Holding is three
    frames in four, and a rate p moves by p(1 − p) per unit of offset: the log ratio of two hold
    rates (0.767 / 0.775 → −0.01) asks for a quarter of the change needed, the log odds (−0.05)
    for all of it (a Newton step); for the rare motions the two agree."""
    ok = (tcounts >= 20) & (gcounts >= 5)
    step = np.where(ok, np.log(np.maximum(target, 1e-6) / np.maximum(got, 1e-6)), 0.0)
    t_h, g_h = np.clip(target[:, -1], 1e-6, 1 - 1e-6), np.clip(got[:, -1], 1e-6, 1 - 1e-6)
    step[:, -1] = np.where(ok[:, -1], np.log(t_h / (1 - t_h)) - np.log(g_h / (1 - g_h)), 0.0)
    return np.where((tcounts >= 20) & (gcounts < 5), 0.5, step)  # a motion it hardly makes


def voicing_step(vtarget: np.ndarray, vn: np.ndarray, vgot: np.ndarray, vgn: np.ndarray) -> np.ndarray:
    """One round's change of the (4, len(VOICE_RULES)) voice-leading weights: log(training rate /
    sampled rate) of choosing a note that fails each check, where both sets have at least three
    such notes; +0.5 where the training pieces have them and the sampler hardly ever does; and
    where the sampler has three or more and the training pieces fewer, the log ratio against
    the training rate with half a note added (the alto's parallel octaves with the soprano:
    none in Bach's 58,000 alto notes, and without this step nothing held the sampler's at 0.4
    per 1000). (Bach's parallels are rare: a voice's octaves are a handful in 60,000 notes, so
    a few training hits already say the rate.)"""
    hits_t, hits_g = vtarget * vn[:, None], vgot * vgn[:, None]
    vstep = np.where((hits_t >= 3) & (hits_g >= 3), np.log(np.maximum(vtarget, 1e-7) / np.maximum(vgot, 1e-7)), 0.0)
    smoothed = (hits_t + 0.5) / np.maximum(vn, 1)[:, None]
    vstep = np.where((hits_t < 3) & (hits_g >= 3), np.minimum(np.log(smoothed / np.maximum(vgot, 1e-7)), 0.0), vstep)
    return np.where((hits_t >= 3) & (hits_g < 3) & (vtarget * vgn[:, None] >= 3), 0.5, vstep)  # hardly ever


def degree_counts(grid: np.ndarray, frames: slice, key: tuple[int, str]) -> np.ndarray:
    """(2, 12) counts of the notes struck in ``frames`` (all four voices) by pitch class from
    the key's tonic, in the key's mode's row (major, minor)."""
    from tunesmith.generate.chorale import DEGREE_MODES
    from tunesmith.represent import satb

    g = grid[:, frames]
    p = g[g >= satb.PITCH0].astype(int) - satb.PITCH0 + satb.PITCH_LO
    out = np.zeros((len(DEGREE_MODES), 12))
    out[DEGREE_MODES.index(key[1])] = np.bincount((p - key[0]) % 12, minlength=12)
    return out


def degree_step(target: np.ndarray, got: np.ndarray) -> np.ndarray:
    """One round's change of the (2, 12) degree offsets from the training and sampled counts:
    per mode, log(training share / sampled share) of each pitch class both sets hold often
    enough (20 and 5 notes), +0.5 for one the training pieces use and the sampler hardly does;
    then shifted so that the change averages zero over the training shares, leaving the
    balance between striking a note and holding one to the motion offsets."""
    t = target / np.maximum(target.sum(1, keepdims=True), 1)
    g = got / np.maximum(got.sum(1, keepdims=True), 1)
    ok = (target >= 20) & (got >= 5)
    step = np.where(ok, np.log(np.maximum(t, 1e-6) / np.maximum(g, 1e-6)), 0.0)
    step = np.where((target >= 20) & (got < 5) & (got.sum(1, keepdims=True) > 0), 0.5, step)
    step -= (step * t).sum(1, keepdims=True)
    return np.where(got.sum(1, keepdims=True) > 0, step, 0.0)  # a mode never sampled: unchanged


def check_against_training(name: str, pieces: list, refs: list, names: list, a, groups=None) -> float:
    """The pieces against two draws of crops of the training chorales on the fair yardstick:
    printed, and the mean AUC returned (the lower, the harder to tell from Bach)."""
    from tunesmith.evaluate.fair import fair_compare

    aucs = [fair_compare(pieces, refs, names, bars=a.bars, n_reference=a.check, seed=d,
                         gen_groups=groups)["two_sample"] for d in (1, 2)]
    print(f"{name}: against training crops AUC {aucs[0]['auc']:.3f} / {aucs[1]['auc']:.3f}, "
          f"accuracy {aucs[0]['accuracy']:.3f} / {aucs[1]['accuracy']:.3f}", flush=True)
    return float(np.mean([t["auc"] for t in aucs]))


def write_sampling(model: str, arrays: dict) -> None:
    """Store (rows, k) arrays under ``sampling`` in the model's config.json, rounded to 0.01."""
    from tunesmith.models.registry import resolve

    path = resolve(model) / "config.json"
    cfg = json.loads(path.read_text())
    for key, arr in arrays.items():
        cfg.setdefault("sampling", {})[key] = [[round(float(x), 2) for x in row] for row in arr]
    path.write_text(json.dumps(cfg, indent=1) + "\n")
    print(f"wrote {path}")


def fit_harmonize(a) -> None:
    """``--harmonize``: the voice-leading weights for harmonizing without rules. Starting from
    the model's ``sampling.voicing`` (fitted on free pieces), each round harmonizes ``--n`` of
    the training sopranos (seeds 1000 on) and moves the alto's, tenor's and bass's weights as
    ``--voicing`` does, until those voices break each check as often as Bach's do; the check
    harmonizes every training soprano (seeds 2000 on) with and without them and compares
    ``--check`` 8-bar crops of each with crops of the training chorales. Written as
    ``sampling.voicing_harmonize`` (``--write``) only when the harmonizations are the harder
    to tell from Bach."""
    from tunesmith.evaluate.fair import meter_of, reference_crops
    from tunesmith.generate.api import load_model
    from tunesmith.generate.chorale import VOICE_RULES, ChoraleTokenModel, voicing_rates
    from tunesmith.music.dataset import open_dataset
    from tunesmith.represent import satb

    if a.rules != "off":
        raise SystemExit("calibrate_motion.py: --harmonize fits weights used without rules: give --rules off too")
    m = load_model(a.model)
    if not isinstance(m, ChoraleTokenModel):
        raise SystemExit(f"calibrate_motion.py: {a.model} is not an SATB chorale token model")
    if m._voicing is None:
        raise SystemExit(f"calibrate_motion.py: {a.model} has no sampling.voicing to start from: fit it first "
                         "(--voicing --rules off)")
    ds = open_dataset(m.config["dataset"]["name"], progress=False)
    train = ds.split("train")
    refs, names = [ds.load(e) for e in train], [e["id"] for e in train]
    vtarget, vn = voicing_rates([x for x in (satb.encode(s) for s in refs) if x is not None])

    def harmonized(seed0: int, k: int | None = None) -> list:
        return [m.harmonize(s, seed=seed0 + i, rules="off").score for i, s in enumerate(refs[:k])]

    vw = m._voicing.copy()
    for it in range(a.iters + 1):
        m._voicing_h = vw
        hs = harmonized(1000, a.n)
        vgot, vgn = voicing_rates([x for x in (satb.encode(h) for h in hs) if x is not None])
        print(f"round {it}: per 1000 voice tokens, harmonized/training (A T B): " + "; ".join(
            f"{r} " + " ".join(f"{1000 * vgot[v, j]:.1f}/{1000 * vtarget[v, j]:.1f}" for v in (1, 2, 3))
            for j, r in enumerate(VOICE_RULES)), flush=True)
        if it == a.iters:
            break
        step = voicing_step(vtarget, vn, vgot, vgn)
        step[0] = 0.0  # the soprano is the melody: nothing to fit
        vw = np.clip(vw + a.rate * step, -8.0, 3.0).astype(np.float32)
    print("voice-leading weights for harmonizing (S A T B):")
    for j, r in enumerate(VOICE_RULES):
        print(f"  {r:>16} " + " ".join(f"{vw[v, j]:+.2f}" for v in range(4)))
    results = {}
    for name, weights in (("free-piece weights", None), ("harmonizing weights", vw)):
        m._voicing_h = weights
        whole = harmonized(2000)
        crops, groups, _ = reference_crops(whole, names, bars=a.bars, meters=Counter(meter_of(s) for s in whole),
                                           n=a.check, seed=100)
        results[name] = check_against_training(name, crops, refs, names, a, groups)
    better = results["harmonizing weights"] < results["free-piece weights"]
    print("chosen:", "harmonizing weights" if better else "the free pieces' weights (nothing written)")
    if a.write and better:
        write_sampling(a.model, {"voicing_harmonize": vw})


def main() -> None:
    from tunesmith.errors import OptionError
    from tunesmith.evaluate.fair import from_first_bar_line, meter_of
    from tunesmith.generate.api import load_model
    from tunesmith.generate.chorale import (
        DEGREE_MODES,
        MOTION_BINS,
        MOTION_SPAN,
        VOICE_RULES,
        ChoraleTokenModel,
        fit_voicing,
        motion_table,
        voicing_nll,
        voicing_positions,
        voicing_rates,
    )
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.keys import parse_key, score_key
    from tunesmith.represent import satb

    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=100, help="pieces per fitting round")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0.8)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--check", type=int, default=200, help="pieces for the before/after comparison")
    ap.add_argument("--voicing", action="store_true", help="fit the voice-leading weights too")
    ap.add_argument("--degrees", action="store_true",
                    help="fit the scale-degree offsets too (sampling.degree_bias; strict rules)")
    ap.add_argument("--rules", choices=("strict", "off"), default="strict",
                    help="the rules mode the offsets are fitted for (off: written as sampling.motion_bias_off, "
                         "which the sampler uses without rules)")
    ap.add_argument("--harmonize", action="store_true",
                    help="fit the voice-leading weights the sampler uses when harmonizing without rules "
                         "(sampling.voicing_harmonize), on harmonizations of the training sopranos")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    if a.harmonize:
        return fit_harmonize(a)
    if a.voicing and a.rules != "off":
        raise SystemExit("calibrate_motion.py: --voicing fits the weights the sampler uses without rules: "
                         "give --rules off too")
    if a.degrees and a.rules != "strict":
        raise SystemExit("calibrate_motion.py: --degrees fits offsets the sampler uses under the rules: "
                         "leave --rules strict")
    m = load_model(a.model)
    if not isinstance(m, ChoraleTokenModel):
        raise SystemExit(f"calibrate_motion.py: {a.model} is not an SATB chorale token model")
    ds = open_dataset(m.config["dataset"]["name"], progress=False)
    train = ds.split("train")
    refs, names = [ds.load(e) for e in train], [e["id"] for e in train]
    deg = dtarget = None
    if a.degrees:  # the training chorales' notes by degree of their stated key (else the estimated one)
        dtarget = np.zeros((len(DEGREE_MODES), 12))
        for s in refs:
            g = grid_of(s, last_bar=False)  # counted as the sampled pieces are, without the final cadence
            if g is not None:
                try:
                    key = parse_key(s.meta.key) if s.meta.key else score_key(s)
                except OptionError:  # a stated key this parser does not read
                    key = score_key(s)
                dtarget += degree_counts(*g, key)
        deg = np.zeros((len(DEGREE_MODES), 12), np.float32)
    # the target is per meter: Bach's 3/4 chorales hold their notes longer than his 4/4 ones
    # (training holds per frame, S A T B: 0.82 0.79 0.78 0.76 against 0.76 0.72 0.71 0.71), and
    # the model samples almost only 4/4, so the rates of all chorales pooled would ask it for
    # too few notes (its pieces had 8% fewer notes per bar than held-out 4/4 crops)
    meter_rates = training_rates(refs)
    bias = np.zeros((4, MOTION_BINS), np.float32)
    vw = None
    if a.voicing:
        train_ids = [x for x in (satb.encode(s) for s in refs) if x is not None]
        pos = voicing_positions(m, train_ids)
        vw = fit_voicing(*pos)
        valid = voicing_positions(m, [x for x in (satb.encode(ds.load(e)) for e in ds.split("valid")) if x is not None])
        print("voice-leading weights, maximum likelihood: NLL per voice token, training "
              f"{voicing_nll(*pos, None):.4f} -> {voicing_nll(*pos, vw):.4f}, validation "
              f"{voicing_nll(*valid, None):.4f} -> {voicing_nll(*valid, vw):.4f}", flush=True)
        del pos, valid
        vtarget, vn = voicing_rates(train_ids, skip_last_bar=True)  # as the sampled pieces are counted
    labels = [f"{d:+d}" for d in range(-MOTION_SPAN, MOTION_SPAN + 1)] + ["hold"]
    for it in range(a.iters + 1):
        m._motion = m._motion_free = motion_table(bias) if it else None
        m._voicing = vw
        m._degrees = deg if it else None
        made = [m.generate(bars=a.bars, seed=1000 + i, rules=a.rules) for i in range(a.n)]
        pieces = [g.score for g in made]
        grids = [grid_of(p, last_bar=False) for p in pieces]
        got, gcounts = rates(grids)
        if deg is not None:  # notes by degree of the key the rules held each piece to
            dgot = np.zeros((len(DEGREE_MODES), 12))
            for g, grid in zip(made, grids):
                if grid is not None and g.report.get("key"):
                    dgot += degree_counts(*grid, tuple(g.report["key"]))
            t_sh = dtarget / dtarget.sum(1, keepdims=True)
            g_sh = dgot / np.maximum(dgot.sum(1, keepdims=True), 1)
            print("  notes by degree from the tonic, sampled/training %: " + "; ".join(
                f"{md} " + " ".join(f"{100 * g_sh[r, d]:.1f}/{100 * t_sh[r, d]:.1f}" for d in range(12))
                for r, md in enumerate(DEGREE_MODES)), flush=True)
        target, tcounts = meter_target(meter_rates, Counter(meter_of(p) for p in pieces))
        if vw is not None:  # (rules off: the same pieces)
            vgot, vgn = voicing_rates([satb.encode(p) for p in pieces], skip_last_bar=True)
            print("  voice-leading per 1000 voice tokens, sampled/training (S A T B): " + "; ".join(
                f"{r} " + " ".join(f"{1000 * vgot[v, j]:.1f}/{1000 * vtarget[v, j]:.1f}" for v in range(4))
                for j, r in enumerate(VOICE_RULES)), flush=True)
        err = np.abs(np.log((got + 1e-4) / (target + 1e-4)))[tcounts >= 20]
        print(f"round {it}: mean |log(sampled/training rate)| {err.mean():.3f}; restrikes S A T B "
              + " ".join(f"{got[v, MOTION_SPAN]:.3f}/{target[v, MOTION_SPAN]:.3f}" for v in range(4))
              + "; holds " + " ".join(f"{got[v, -1]:.3f}/{target[v, -1]:.3f}" for v in range(4)), flush=True)
        if it == a.iters:
            break
        bias = np.clip(bias + a.rate * motion_step(target, got, tcounts, gcounts), -3.0, 3.0).astype(np.float32)
        if vw is not None:  # the same step for each check's rate, where the pieces can say it
            vw = np.clip(vw + a.rate * voicing_step(vtarget, vn, vgot, vgn), -8.0, 3.0).astype(np.float32)
        if deg is not None:
            deg = np.clip(deg + a.rate * degree_step(dtarget, dgot), -3.0, 3.0).astype(np.float32)
    print("offsets (S A T B):")
    for k, lab in enumerate(labels):
        print(f"  {lab:>5} " + " ".join(f"{bias[v, k]:+.2f}" for v in range(4)))
    if deg is not None:
        print("degree offsets (pitch classes from the tonic 0-11):")
        for r, md in enumerate(DEGREE_MODES):
            print(f"  {md:>5} " + " ".join(f"{deg[r, d]:+.2f}" for d in range(12)))
    if vw is not None:
        print("voice-leading weights (S A T B):")
        for j, r in enumerate(VOICE_RULES):
            print(f"  {r:>16} " + " ".join(f"{vw[v, j]:+.2f}" for v in range(4)))

    results = {}
    candidates = [("uncalibrated", None, None, None)]
    if deg is not None:
        candidates.append(("motion offsets alone", motion_table(bias), None, None))
    candidates.append(("calibrated", motion_table(bias), vw, deg))
    for name, table, weights, degrees in candidates:
        m._motion = m._motion_free = table
        m._voicing = weights
        m._degrees = degrees
        pieces = [from_first_bar_line(m.generate(bars=a.bars, seed=2000 + i, rules=a.rules).score, a.bars)
                  for i in range(a.check)]
        results[name] = check_against_training(name, pieces, refs, names, a)
    better = results["calibrated"] < min(v for k, v in results.items() if k != "calibrated")
    print("chosen:", "calibrated" if better else "not the fitted calibration (nothing written)")
    if a.write and better:
        write_sampling(a.model, {"motion_bias" if a.rules == "strict" else "motion_bias_off": bias,
                                 **({"voicing": vw} if vw is not None else {}),
                                 **({"degree_bias": deg} if deg is not None else {})})


if __name__ == "__main__":
    main()
