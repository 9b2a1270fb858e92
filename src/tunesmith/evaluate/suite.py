"""``tunesmith evaluate``: the whole suite on a generated set, a reference set and a
training set, written as ``metrics.json``, ``report.md``, ``report.html`` and PNGs."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError, OptionError, TunesmithError
from tunesmith.evaluate import compare, metrics, originality, theory
from tunesmith.fileio import write_json
from tunesmith.music.score import Score


@dataclass
class PieceSet:
    label: str  # what the user passed
    description: str
    scores: list[Score]
    names: list[str]
    dataset: object | None = None  # the Dataset when the set came from one
    skipped: list[str] = field(default_factory=list)


def load_set(arg: str, *, split: str | None, limit: int | None, seed: int = 0, progress: bool = True,
             option: str = "GENERATED") -> PieceSet:
    """A folder of files, one file, a prepared dataset or a bundled corpus name."""
    from tunesmith.music.corpora import entry_names, is_corpus
    from tunesmith.music.dataset import SYMBOLIC_EXTS, open_dataset
    from tunesmith.music.io import read_pieces

    p = Path(arg)
    if is_corpus(arg) or (p / "dataset.json").is_file():
        ds = open_dataset(arg, progress=progress)
        wanted = ("valid", "test") if split == "held-out" else (split,)
        entries = [e for e in ds.entries if split in (None, "all") or e["split"] in wanted]
        if not entries:
            raise OptionError(option, f"dataset '{arg}' has no pieces in split '{split}'")
        if limit and len(entries) > limit:
            rng = np.random.default_rng(seed)
            entries = [entries[i] for i in np.sort(rng.choice(len(entries), limit, replace=False))]
        scores = [ds.load(e) for e in entries]
        what = f"{ds.name} ({split or 'all'} split{', random ' + str(limit) if limit and len(entries) == limit else ''})"
        return PieceSet(arg, what, scores, entry_names(entries, ds.name), dataset=ds)
    n_same = 0
    if p.is_dir():
        found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SYMBOLIC_EXTS)
        if not found:
            raise BadInputError(p, f"no music files ({', '.join(sorted(SYMBOLIC_EXTS))}) in this folder")
        files = one_file_per_piece(found)
        n_same = len(found) - len(files)
    elif p.is_file():
        files = [p]
    else:
        raise OptionError(option, f"'{arg}' is not a folder, a file, a prepared dataset or a bundled corpus")
    scores, names, skipped = [], [], []
    from tqdm import tqdm

    for f in tqdm(files, desc=f"read {p.name}", disable=not progress or len(files) < 20, dynamic_ncols=True):
        try:
            res = read_pieces(f)
        except TunesmithError as e:
            skipped.append(str(e))
            print(f"tunesmith: warning: {e}; skipped", file=sys.stderr)
            continue
        for i, s in enumerate(res.scores):
            scores.append(s)
            names.append(f.name if len(res.scores) == 1 else f"{f.name}#{i + 1}")
    if limit and len(scores) > limit:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(scores), limit, replace=False))
        scores, names = [scores[i] for i in keep], [names[i] for i in keep]
    if not scores:
        raise BadInputError(p, "no readable pieces")
    same = f"; {n_same} other format(s) of the same pieces not counted again" if n_same else ""
    return PieceSet(arg, f"{p.name} ({len(files)} files{same})", scores, names, skipped=skipped)


# The format that holds a piece most exactly first: `generate` writes .mid and .musicxml of one piece.
FORMAT_PREFERENCE = (".mid", ".midi", ".musicxml", ".xml", ".mxl", ".krn", ".abc")


def one_file_per_piece(files: list[Path]) -> list[Path]:
    """One file per piece: files in one folder with the same stem and different music
    formats (song.mid, song.musicxml) are one piece, read from the most exact format."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for f in files:
        groups.setdefault((f.parent, f.stem), []).append(f)

    def rank(f: Path) -> int:
        ext = f.suffix.lower()
        return FORMAT_PREFERENCE.index(ext) if ext in FORMAT_PREFERENCE else len(FORMAT_PREFERENCE)

    return sorted(min(g, key=rank) for g in groups.values())


def _notes(scores: list[Score], desc: str, progress: bool) -> list[metrics.Notes]:
    from tqdm import tqdm

    return [metrics.extract_notes(s) for s in tqdm(scores, desc=desc, disable=not progress or len(scores) < 200,
                                                   dynamic_ncols=True)]


def model_nll(model_arg: str, reference: PieceSet) -> dict:
    """NLL per token and perplexity of a sequence model on the reference's test split, and
    nats per quarter note (comparable across token representations of the same pieces)."""
    from tunesmith.generate.api import MusicModel
    from tunesmith.generate.chorale import ChoraleTokenModel
    from tunesmith.train.data import event_corpus, satb_corpus
    from tunesmith.train.trainer import evaluate_nll

    if reference.dataset is None:
        raise OptionError("--model", "NLL needs the reference to be a corpus or a prepared dataset "
                          "(it is scored on that dataset's test split)")
    from tunesmith.generate.api import load_model

    m = load_model(model_arg)
    if isinstance(m, ChoraleTokenModel):
        corpus = satb_corpus(reference.dataset, progress=False)
    elif isinstance(m, MusicModel):
        corpus = event_corpus(reference.dataset, m.tokenizer, progress=False, styles=m.styles or None)
    else:
        raise OptionError("--model", f"'{model_arg}' is a {m.config.get('family')} model; --model reports the NLL "
                          "of the token models (rnn, gru, lstm, transformer)")
    if not corpus.splits["test"]:
        raise BadInputError(reference.dataset.path, f"the test split is empty ({len(reference.dataset.entries)} "
                            "pieces in all): the NLL is measured on held-out pieces; prepare more pieces")
    seq_len = int(m.config.get("train", {}).get("seq_len", 512))
    with __import__("torch").no_grad():
        nll, n = evaluate_nll(m.model, corpus, "test", seq_len=seq_len)
    if isinstance(m, ChoraleTokenModel):  # frames of five tokens, after BOS and the meter
        from tunesmith.represent import satb

        quarters = sum((len(s) - 3) // satb.FRAME for s in corpus.splits["test"]) / satb.STEPS_PER_QUARTER
    else:
        quarters = sum(reference.dataset.load(e).duration_quarters() for e in reference.dataset.split("test"))
    return {"model": m.name, "split": "test", "dataset": reference.dataset.name, "tokens": n,
            "nll_per_token": nll, "perplexity": math.exp(nll) if n else math.nan,
            "nll_per_quarter": nll * n / quarters if quarters else math.nan,
            "representation": corpus.meta.get("representation")}


def run_suite(generated: str, reference: str, *, train: str | None = None, out: str | Path | None = None,
              model: str | None = None, reference_split: str = "held-out", max_reference: int = 2000,
              seed: int = 0, progress: bool = True, crop_bars: int | None = None, fair: bool = True) -> dict:
    """The whole suite. With ``fair`` (the default) and a reference that is a corpus or
    dataset, the generated set is also compared with crops of the reference's pieces of
    the same length in bars (``crop_bars``; default: the generated pieces' median) and the
    same meters, with a real-against-real baseline (:mod:`tunesmith.evaluate.fair`)."""
    t0 = time.perf_counter()
    gen = load_set(generated, split="all", limit=None, progress=progress, option="GENERATED")
    ref = load_set(reference, split=reference_split, limit=max_reference, seed=seed, progress=progress,
                   option="--reference")
    out_dir = Path(out) if out else Path("runs") / f"evaluate-{Path(generated).name}"
    gen_n = _notes(gen.scores, "metrics (generated)", progress)
    ref_n = _notes(ref.scores, "metrics (reference)", progress)
    gen_m = [metrics.all_metrics(n) for n in gen_n]
    ref_m = [metrics.all_metrics(n) for n in ref_n]
    per_feature = compare.mgeval_compare(gen_m, ref_m, seed=seed)
    ge = compare.embed(gen_m, [compare.embedding_extras(n) for n in gen_n])
    re_ = compare.embed(ref_m, [compare.embedding_extras(n) for n in ref_n])
    gz, rz = compare.standardize(ge, re_)
    result: dict = {
        "generated": {"source": gen.label, "description": gen.description, "pieces": len(gen.scores),
                      "skipped": gen.skipped},
        "reference": {"source": ref.label, "description": ref.description, "pieces": len(ref.scores)},
        "features": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in per_feature.items()},
        "frechet": compare.frechet(gz, rz, seed=seed),
        "embedding": {"name": compare.EMBEDDING, "definition": compare.EMBEDDING_DOC},
        "two_sample_test": compare.two_sample_test(gz, rz, seed=seed),
    }
    if model:
        result["nll"] = model_nll(model, ref)
    if fair and ref.dataset is not None:
        from tunesmith.evaluate.fair import fair_compare

        result["fair"] = fair_compare(gen.scores, ref.scores, ref.names, bars=crop_bars,
                                      n_reference=max(len(gen.scores), 20), seed=seed)

    # originality against the training set
    train_set = None
    if train:
        train_set = load_set(train, split="train", limit=None, progress=progress, option="--train")
    elif ref.dataset is not None:
        train_set = load_set(reference, split="train", limit=None, progress=progress, option="--reference")
    if train_set is not None:
        idx = originality.TrainingIndex(_notes(train_set.scores, "index training set", progress))
        orig = [idx.check(n) for n in gen_n]
        baseline = None
        if train_set.dataset is not None and train_set.dataset.split("valid"):
            held = load_set(train_set.label, split="valid", limit=200, seed=seed, progress=False)
            bo = [idx.check(n) for n in _notes(held.scores, "", False)]
            baseline = _orig_summary(bo, held.description)
        result["originality"] = {
            "training_set": train_set.description, "training_pieces": len(train_set.scores),
            "copy_rule": f"longest common run ≥ {originality.COPY_BARS:g} bars and ≥ "
                         f"{originality.COPY_MIN_ONSETS} onsets",
            **_orig_summary(orig, gen.description),
            "held_out_baseline": baseline,
            "per_piece": [dict(o.to_dict(), piece=gen.names[i],
                            copied_from_name=train_set.names[o.copied_from] if o.copied_from is not None else None,
                            nearest_name=train_set.names[o.nearest] if o.nearest is not None else None)
                       for i, o in enumerate(orig)],
        }

    # four-part theory checks, with the reference beside
    vg = [theory.voice_leading(n) for n in gen_n]
    vr = [theory.voice_leading(n) for n in ref_n]
    result["theory"] = {"generated": _theory_summary(vg), "reference": _theory_summary(vr),
                        "unit": "per 100 beats (quarter notes), mean over four-voice pieces"}
    result["pieces"] = [{"piece": gen.names[i], **{k: _num(v) for k, v in m.items() if np.ndim(v) == 0}}
                        for i, m in enumerate(gen_m)]
    result["seconds"] = round(time.perf_counter() - t0, 2)
    write_report(out_dir, result, per_feature, gen_m, ref_m)
    result["out"] = str(out_dir)
    return result


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _orig_summary(orig: list[originality.Originality], what: str) -> dict:
    runs = np.array([o.longest_run_bars for o in orig]) if orig else np.zeros(0)
    shares = {str(k): _num(np.nanmean([o.ngram_share[k] for o in orig])) if orig else None
              for k in originality.NGRAM_SIZES}
    return {"set": what, "pieces": len(orig), "flagged": int(sum(o.flagged for o in orig)),
            "flagged_share": _num(np.mean([o.flagged for o in orig])) if orig else None,
            "longest_run_bars_median": _num(np.median(runs)) if len(runs) else None,
            "longest_run_bars_max": _num(runs.max()) if len(runs) else None,
            "ngram_share_mean": shares,
            "nearest_similarity_mean": _num(np.mean([o.nearest_similarity for o in orig])) if orig else None}


def _theory_summary(rows: list[dict]) -> dict:
    ok = [r for r in rows if not math.isnan(r["spacing"])]
    out = {"four_voice_pieces": len(ok)}
    for k in theory.CHECKS:
        out[k] = _num(np.mean([r[k] for r in ok])) if ok else None
    return out


# --------------------------------------------------------------------------- report


def _fmt(v, nd=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def write_report(out: Path, res: dict, per_feature: dict, gen_m: list[dict], ref_m: list[dict]) -> None:
    from html import escape

    import markdown

    from tunesmith.music.io import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    _plot_kde(out / "mgeval_kde.png", per_feature)
    _plot_distributions(out / "metric_distributions.png", gen_m, ref_m)
    if "originality" in res:
        _plot_originality(out / "originality.png", res["originality"])
    md = format_report(res)
    atomic_write_bytes(out / "report.md", md.encode())
    # every name in the report (folders, files, titles) is the user's: markdown passes raw HTML
    # through, so escape it first (the report itself writes no HTML of its own)
    html = markdown.markdown(escape(md, quote=False), extensions=["tables"])
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>tunesmith evaluation</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
            "img{max-width:100%}</style></head><body>" + html + "</body></html>")
    atomic_write_bytes(out / "report.html", page.encode())
    write_json(out / "metrics.json", json.loads(json.dumps(res, default=_json_default)))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def summary_lines(res: dict) -> list[str]:
    fr, ts = res["frechet"], res["two_sample_test"]
    oas = [v["overlap"] for v in res["features"].values() if v.get("overlap") is not None and v["overlap"] == v["overlap"]]
    lines = [f"generated: {res['generated']['pieces']} pieces; reference: {res['reference']['description']}, "
             f"{res['reference']['pieces']} pieces",
             f"mean overlapping area over {len(oas)} features: {np.mean(oas):.3f} (1 = as close as reference pieces are to each other)"
             if oas else "overlapping area: not enough pieces",
             f"Fréchet distance ({fr['embedding']}): {_fmt(fr['value'], 2)} "
             f"[95% CI {_fmt(fr['ci95'][0], 2)} – {_fmt(fr['ci95'][1], 2)}]",
             f"two-sample test accuracy: {_fmt(ts['accuracy'])} (0.5 = indistinguishable; p = {_fmt(ts['p_value'], 4)})"]
    fa = res.get("fair")
    if fa and "error" not in fa:
        t, b = fa["two_sample"], fa["two_sample_baseline"]
        lines.append(f"fair yardstick ({fa['bars']}-bar crops, same meters, {fa['reference']['crops']} crops of "
                     f"{fa['reference']['pieces']} held-out pieces): ROC AUC {_fmt(t['auc'])} "
                     f"[95% CI {_fmt(t['auc_ci95'][0])} – {_fmt(t['auc_ci95'][1])}], accuracy {_fmt(t['accuracy'])}; "
                     f"real vs real {_fmt(b['auc'])} (0.5 = indistinguishable)")
        top = ", ".join(f"{r['feature']} {_fmt(r['auc'], 2)}" for r in fa["per_feature"][:3])
        lines.append(f"features that give the set away most (AUC alone): {top}")
    elif fa:
        lines.append(f"fair yardstick: {fa['error']}")
    if "nll" in res:
        lines.append(f"NLL on {res['nll']['dataset']} test: {res['nll']['nll_per_token']:.3f} nats/token "
                     f"(perplexity {res['nll']['perplexity']:.2f})")
    if "originality" in res:
        o = res["originality"]
        lines.append(f"originality: {o['flagged']} of {o['pieces']} pieces flagged as copies; median longest "
                     f"common run {_fmt(o['longest_run_bars_median'], 2)} bars")
    th = res["theory"]
    if th["generated"]["four_voice_pieces"]:
        g, r = th["generated"], th["reference"]
        lines.append("parallel fifths/octaves per 100 beats: "
                     f"{_fmt(g['parallel_fifths'], 2)}/{_fmt(g['parallel_octaves'], 2)} "
                     f"(reference {_fmt(r['parallel_fifths'], 2)}/{_fmt(r['parallel_octaves'], 2)})")
    return lines


def format_report(res: dict) -> str:
    g, r = res["generated"], res["reference"]
    L = ["# tunesmith evaluation", "",
         f"- generated: `{g['source']}` — {g['description']}, {g['pieces']} pieces"
         + (f" ({len(g['skipped'])} files skipped)" if g["skipped"] else ""),
         f"- reference: `{r['source']}` — {r['description']}, {r['pieces']} pieces", "",
         "## Summary", "", *[f"- {s}" for s in summary_lines(res)], "",
         "## Features: generated vs reference (mgeval)", "",
         "Intra-set distances within the reference and inter-set distances (generated × reference), "
         "each smoothed with a Gaussian KDE. KL = KL(intra-reference ‖ inter-set); OA = overlapping area "
         "of the two densities (1 is best).", "",
         "| feature | generated mean (sd) | reference mean (sd) | KL | OA |", "| --- | ---: | ---: | ---: | ---: |"]
    for k, v in res["features"].items():
        gm = f"{_fmt(v['generated_mean'])} ({_fmt(v['generated_std'])})" if v["generated_mean"] is not None else "(vector)"
        rm = f"{_fmt(v['reference_mean'])} ({_fmt(v['reference_std'])})" if v["reference_mean"] is not None else "(vector)"
        L.append(f"| {k} | {gm} | {rm} | {_fmt(v['kl'])} | {_fmt(v['overlap'])} |")
    fr, ts = res["frechet"], res["two_sample_test"]
    L += ["", "![KDE of intra- and inter-set distances](mgeval_kde.png)", "",
          "![metric distributions](metric_distributions.png)", "",
          "## Fréchet distance", "",
          f"{_fmt(fr['value'], 3)}, 95% bootstrap interval {_fmt(fr['ci95'][0], 3)} – {_fmt(fr['ci95'][1], 3)} "
          f"({fr.get('n_boot', 0)} resamples).", "", f"Embedding: {res['embedding']['definition']}", "",
          "## Classifier two-sample test", "",
          f"Held-out accuracy {_fmt(ts['accuracy'])} over {ts.get('folds', 0)} folds with {ts['n_per_class']} pieces "
          f"per class (one-sided binomial p = {_fmt(ts['p_value'], 4)}); 0.5 means the classifier cannot tell "
          "generated from real.", ""]
    if "nll" in res:
        n = res["nll"]
        L += ["## Likelihood", "", f"Model `{n['model']}` on the {n['dataset']} test split: "
              f"{n['nll_per_token']:.4f} nats per token over {n['tokens']:,} tokens (perplexity {n['perplexity']:.3f}).", ""]
    if "originality" in res:
        o = res["originality"]
        L += ["## Originality", "",
              f"Against {o['training_set']} ({o['training_pieces']} pieces). A piece is flagged when "
              f"{o['copy_rule']}.", "",
              "| set | pieces | flagged | median longest run (bars) | max (bars) | 4-gram share | 8-gram share | 16-gram share |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for row in [o] + ([o["held_out_baseline"]] if o.get("held_out_baseline") else []):
            sh = row["ngram_share_mean"]
            L.append(f"| {row['set']} | {row['pieces']} | {row['flagged']} | {_fmt(row['longest_run_bars_median'], 2)} | "
                     f"{_fmt(row['longest_run_bars_max'], 2)} | {_fmt(sh['4'])} | {_fmt(sh['8'])} | {_fmt(sh['16'])} |")
        flagged = [p for p in o["per_piece"] if p["flagged"]]
        if flagged:
            L += ["", "Flagged pieces:", "", "| piece | longest run (bars) | onsets | from training piece |",
                  "| --- | ---: | ---: | --- |"]
            L += [f"| {p['piece']} | {p['longest_run_bars']:.2f} | {p['longest_run_onsets']} | {p['copied_from_name']} |"
                  for p in flagged[:50]]
        L += ["", "![longest common runs](originality.png)", ""]
    fa = res.get("fair")
    if fa and "error" not in fa:
        L += fair_section(fa)
    th = res["theory"]
    L += ["## Four-part writing (whole pieces)", "", f"Counts {th['unit']}.", "",
          "| check | generated | reference |", "| --- | ---: | ---: |",
          f"| four-voice pieces | {th['generated']['four_voice_pieces']} | {th['reference']['four_voice_pieces']} |"]
    L += [f"| {k.replace('_', ' ')} | {_fmt(th['generated'][k], 2)} | {_fmt(th['reference'][k], 2)} |"
          for k in theory.CHECKS]
    L += ["", f"_Made by tunesmith in {res['seconds']} s._", ""]
    return "\n".join(L)


def fair_section(fa: dict) -> list[str]:
    from tunesmith.evaluate.theory import CHECKS

    t, b = fa["two_sample"], fa["two_sample_baseline"]
    g, r, h = fa["figures"], fa["figures_reference"], fa["figures_baseline_half"]
    L = ["## Fair comparison: same length, same meters", "",
         f"Generated pieces against {fa['reference']['crops']} crops of {fa['bars']} bars (each starting on a bar "
         f"line, meters in the generated set's proportions) from {fa['reference']['pieces']} held-out real pieces. "
         "The last column compares half of the real crops with the other half (split by piece): what each figure "
         "is for real music.", "",
         "| figure | generated | real crops | real vs real |", "| --- | ---: | ---: | ---: |",
         f"| two-sample ROC AUC [95% CI] | {_fmt(t['auc'])} [{_fmt(t['auc_ci95'][0])}, {_fmt(t['auc_ci95'][1])}] | – | "
         f"{_fmt(b['auc'])} [{_fmt(b['auc_ci95'][0])}, {_fmt(b['auc_ci95'][1])}] |",
         f"| two-sample accuracy | {_fmt(t['accuracy'])} | – | {_fmt(b['accuracy'])} |",
         f"| pieces (four-voice) | {g['pieces']} ({g['four_voice_pieces']}) | {r['pieces']} ({r['four_voice_pieces']}) | "
         f"{h['pieces']} ({h['four_voice_pieces']}) |",
         f"| triad or seventh chord, share of four-voice beats | {_fmt(g['chord_rate'])} ({g['four_voice_beats']} beats) | "
         f"{_fmt(r['chord_rate'])} | {_fmt(h['chord_rate'])} |"]
    L += [f"| {k.replace('_', ' ')} per 100 beats | {_fmt(g[k], 2)} | {_fmt(r[k], 2)} | {_fmt(h[k], 2)} |" for k in CHECKS]
    L += [f"| overlapping area: {k.replace('_', ' ')} | {_fmt(v['generated'])} | – | {_fmt(v['baseline'])} |"
          for k, v in fa["overlap"].items()]
    L += ["", "Which features give the generated set away (a classifier on each feature alone; AUC 0.5 = not at all):",
          "", "| feature | AUC | accuracy |", "| --- | ---: | ---: |"]
    L += [f"| {row['feature'].replace('_', ' ')} | {_fmt(row['auc'])} | {_fmt(row['accuracy'])} |"
          for row in fa["per_feature"]]
    return L + [""]


def _plot_kde(path: Path, per_feature: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feats = [k for k, v in per_feature.items() if v.get("_curves")]
    if not feats:
        return
    cols = 4
    rows = math.ceil(len(feats) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, k in zip(axes.ravel(), feats):
        c = per_feature[k]["_curves"]
        ax.plot(c["grid"], c["intra"], label="intra reference")
        ax.plot(c["grid"], c["inter"], label="inter set")
        ax.set_title(f"{k}\nKL {per_feature[k]['kl']:.2f}  OA {per_feature[k]['overlap']:.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(feats):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_distributions(path: Path, gen_m: list[dict], ref_m: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(metrics.SCALAR_METRICS)
    cols = 5
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.3 * rows), squeeze=False)
    for ax, k in zip(axes.ravel(), keys):
        g = np.array([m[k] for m in gen_m], float)
        r = np.array([m[k] for m in ref_m], float)
        g, r = g[np.isfinite(g)], r[np.isfinite(r)]
        if len(g) or len(r):
            both = np.concatenate([g, r])
            bins = np.linspace(both.min(), both.max() + 1e-9, 25)
            ax.hist(r, bins=bins, density=True, alpha=0.5, label="reference")
            ax.hist(g, bins=bins, density=True, alpha=0.5, label="generated")
        ax.set_title(k, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_originality(path: Path, o: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [p["longest_run_bars"] for p in o["per_piece"]]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(runs, bins=30, label="generated")
    ax.axvline(originality.COPY_BARS, color="r", ls="--", label=f"{originality.COPY_BARS:g} bars")
    ax.set_xlabel("longest run shared with a training piece (bars)")
    ax.set_ylabel("pieces")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


_TRAINING_INDEXES: dict[str, tuple[originality.TrainingIndex, list[str], str]] = {}


def piece_originality(score: Score, training: str, *, progress: bool = False) -> dict:
    """How original one piece is against a training set (a bundled corpus or prepared
    dataset, its train split): the longest run it shares with a training piece, with that
    piece's readable name, the nearest training piece and the shares of shared n-grams.
    The training set is indexed once per process."""
    if training not in _TRAINING_INDEXES:
        train_set = load_set(training, split="train", limit=None, progress=progress, option="training")
        idx = originality.TrainingIndex(_notes(train_set.scores, "index training set", progress))
        _TRAINING_INDEXES[training] = (idx, train_set.names, train_set.description)
    idx, names, what = _TRAINING_INDEXES[training]
    o = idx.check(metrics.extract_notes(score))
    return {**o.to_dict(), "training_set": what,
            "copied_from_name": names[o.copied_from] if o.copied_from is not None else None,
            "nearest_name": names[o.nearest] if o.nearest is not None else None,
            "copy_rule": f"longest common run ≥ {originality.COPY_BARS:g} bars and ≥ {originality.COPY_MIN_ONSETS} onsets"}
