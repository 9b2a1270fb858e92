"""Copy a trained run's best checkpoint into the package as a bundled model, with a model card.

    python scripts/bundle_model.py runs/bundled-bach bach-chorales --data bach-chorales
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tunesmith.models.checkpoint import resolve_checkpoint
from tunesmith.music.dataset import open_dataset
from tunesmith.represent.tokens import EventTokenizer
from tunesmith.train.data import corpus_programs, event_corpus

ASSETS = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "assets" / "models"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("name")
    ap.add_argument("--data", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--playback-tempo", type=float, default=None,
                    help="the tempo a new piece plays at (qpm), instead of the tokenizer's nearest grid step")
    ap.add_argument("--top-p", type=float, default=None,
                    help="the model's default nucleus mass (chosen with scripts/choose_top_p.py)")
    ap.add_argument("--quality", nargs="*", default=[], help="entries of benchmarks/results-quality.json to quote")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads the run trained on (for the card)")
    a = ap.parse_args()
    src = resolve_checkpoint(Path(a.run) / "best")
    dst = ASSETS / a.name
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "model.safetensors", dst / "model.safetensors")
    (dst / "model.safetensors").chmod(0o644)
    cfg = json.loads((src / "config.json").read_text())
    satb = cfg.get("tokenizer", {}).get("kind") == "satb"
    if not satb:
        tok = EventTokenizer()
        corpus = event_corpus(open_dataset(a.data, progress=False), tok, progress=False)
        cfg["tokenizer"] = tok.to_dict()  # the current serialisation of the same tokenizer
        cfg["programs"] = corpus_programs(tok, corpus)
    cfg["name"] = a.name
    if a.playback_tempo:
        cfg["playback"] = {"tempo": a.playback_tempo}
    if a.top_p is not None:
        cfg["sampling"] = {"top_p": a.top_p}
    (dst / "config.json").write_text(json.dumps(cfg, indent=1))
    hist = json.loads((Path(a.run) / "metrics.json").read_text())
    summary = json.loads((Path(a.run) / "summary.json").read_text())
    import math

    if hist:
        best = min(hist, key=lambda h: h.get("valid_objective", h["valid_nll"]))  # as best/ was chosen
    else:  # stopped by the time limit inside the first epoch: validated once at the end
        v = summary["best_valid_nll"]
        best = {"valid_nll": v, "valid_ppl": math.exp(v), "epoch": "end of run"}
    m, t = cfg["model"], cfg["train"]
    test = ""
    if satb:  # the held-out test split's NLL, measured here
        import torch

        from tunesmith.models.checkpoint import load_weights
        from tunesmith.models.registry import build
        from tunesmith.train.data import satb_corpus
        from tunesmith.train.trainer import evaluate_nll

        model = build(cfg["family"], cfg["model"])
        load_weights(model, dst)
        model.eval()
        with torch.no_grad():
            nll, n_tok = evaluate_nll(model, satb_corpus(open_dataset(a.data, progress=False), progress=False), "test",
                                      seq_len=t["seq_len"])
        test = f"\n| test | NLL {nll:.3f} nats/token over {n_tok:,} tokens of the test split |"
    size_mb = (dst / "model.safetensors").stat().st_size / 2**20
    representation = (f"SATB frame tokens (four voices on a sixteenth-note grid, bar position per frame), vocabulary "
                       f"{m['vocab_size']}" if satb else f"REMI event tokens (miditok), vocabulary {m['vocab_size']}")
    quality = ""
    qfile = Path(__file__).resolve().parents[1] / "benchmarks" / "results-quality.json"
    if a.quality and qfile.is_file():
        q = json.loads(qfile.read_text())
        rows = ["| entry | two-sample AUC [95% CI] | accuracy | parallel 5ths / 8ves per 100 beats | "
                "triad/seventh beats | copies |", "| --- | --- | --- | --- | --- | --- |"]
        for name in a.quality:
            e = q["entries"][name]
            two, f = e["two_sample"], e["figures"]
            rows.append(f"| {name} | {two['auc']:.3f} [{two['auc_ci95'][0]:.2f}, {two['auc_ci95'][1]:.2f}] | "
                        f"{two['accuracy']:.3f} | {f['parallel_fifths']:.2f} / {f['parallel_octaves']:.2f} | "
                        f"{f['chord_rate']:.3f} | {e['originality']['flagged']} |")
        ref = q["entries"][a.quality[0]]["figures_reference"]
        rows.append(f"| real held-out crops | – | – | {ref['parallel_fifths']:.2f} / {ref['parallel_octaves']:.2f} | "
                    f"{ref['chord_rate']:.3f} | – |")
        quality = ("\n\nOn the fair yardstick (`python benchmarks/quality.py`, " + q["date"] + f", {q['n']} pieces × "
                   f"{q['bars']} bars against as many crops of held-out chorales; BENCHMARKS.md has the whole table):\n\n"
                   + "\n".join(rows))
    style = ""
    sfile = Path(__file__).resolve().parents[1] / "benchmarks" / "results-style.json"
    if cfg.get("styles") and sfile.is_file():
        r = json.loads(sfile.read_text())
        rows = ["| asked for | classified as asked | without a style |", "| --- | --- | --- |"]
        for kind in ("collections", "regions"):
            for name, e in r[kind].items():
                rows.append(f"| {kind[:-1]} {name} | {e['asked_and_classified']:.2f} | {e['without_style']:.2f} |")
        style = (f"\n\nStyle control (`--style`; trained with `--styles`: collection and Essen-region tokens after "
                 f"BOS). From `python benchmarks/style.py` ({r['date']}, {r['n']} tunes × {r['bars']} bars per style, "
                 f"judged by the bundled collection and region classifiers):\n\n" + "\n".join(rows))
    sampling = (f"\n\nSampling default: top-p {a.top_p:g} (`--top-p` changes it), chosen on the fair yardstick "
                "with `python scripts/choose_top_p.py`." if a.top_p is not None else "")
    playback = (f"\n(a new piece plays at {a.playback_tempo:g} quarter notes per minute, the tempo of the pieces it "
                "learnt from; `--tempo` changes it)" if a.playback_tempo else "")
    card = f"""# {a.name}

{a.description}

| | |
| --- | --- |
| family | {cfg['family']} ({', '.join(f'{k}={v}' for k, v in m.items() if k != 'vocab_size')}) |
| parameters | {cfg['n_params']:,} ({size_mb:.1f} MiB of float32 weights) |
| data | `{a.data}` (music21 corpus), train split of `{cfg['dataset']['name']}`, manifest sha256 `{cfg['dataset']['manifest_sha256'][:16]}…` |
| representation | {representation} |
| training | {summary['steps']} steps ({summary['epochs']} full epochs), {summary['seconds']:.0f} s on {a.threads} CPU thread{'s' if a.threads > 1 else ''}; batch {t['batch_size']}, window {t['seq_len']}, peak lr {t['lr']}, transposition augmentation {'on' if t['augment_transpose'] else 'off'}; stopped by {summary['stop_reason']} |
| validation | NLL {best['valid_nll']:.3f} nats/token, perplexity {best['valid_ppl']:.2f} (epoch {best['epoch']}) |{test}{quality}{style}

Sample: `tunesmith generate --model {a.name} --bars 8 --seed 1 --out out/{a.name}`{playback}{sampling}

Trained by `tunesmith train` in this repository (see `scripts/train_bundled.sh`); the
numbers above are copied from the run's `metrics.json` and `summary.json` by
`scripts/bundle_model.py`.
"""
    (dst / "MODEL_CARD.md").write_text(card)
    print(f"bundled {a.name}: {size_mb:.1f} MiB, valid NLL {best['valid_nll']:.3f}")


if __name__ == "__main__":
    main()
