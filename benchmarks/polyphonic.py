"""Re-evaluate the shipped polyphonic-benchmark checkpoints (JSB Chorales, Nottingham) on
their test splits with `tunesmith bench nll --checkpoint`, and record the figures.

    python benchmarks/polyphonic.py [--shared ../shared] [--runs runs/bench-*]

Runs given with --runs that were not shipped (the weaker families) are added from the
bench_nll.json their training wrote, marked as such; rows from an earlier call are
kept for runs no longer on disk. Writes benchmarks/results-polyphonic.json (BENCHMARKS.md is rebuilt by benchmarks/run.py);
tests/test_bench_nll.py re-scores the first test pieces with each shipped checkpoint against that file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "tunesmith" / "assets" / "benchmarks"


def describe(family: str, m: dict, augment: bool | None, train: dict | None = None) -> str:
    if family == "transformer":
        arch = f"Transformer {m['n_layer']} layers × {m['n_embd']}, {m['n_head']} heads"
    else:
        arch = f"{family.upper()} {m['n_layer']}×{m['n_hidden']} (embedding {m['n_embd']})"
    text = f"{arch}, dropout {m['dropout']}, frame tokens{', random transposition' if augment else ''}"
    if train and train.get("max_minutes"):
        text += (f", learning rate {train['lr']:g} cosine-annealed to {train['min_lr_ratio']:g}× "
                 f"within the {train['max_minutes']:g}-minute budget")
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--runs", nargs="*", default=[], help="run folders of `tunesmith bench nll` not shipped")
    a = ap.parse_args()
    from tunesmith.evaluate.polyphonic import published_results

    rows = []
    for ck in sorted(p for p in SHIPPED.iterdir() if (p / "config.json").is_file()):
        cfg = json.loads((ck / "config.json").read_text())
        data = Path(a.shared) / "benchmarks" / "bl-polyphonic" / f"{cfg['benchmark_data']}.mat"
        out = Path(tempfile.mkdtemp())
        r = subprocess.run([sys.executable, "-m", "tunesmith", "bench", "nll", "--data", str(data), "--checkpoint",
                            str(ck), "--out", str(out)], capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)
        res = json.loads((out / "bench_nll.json").read_text())
        run = cfg["benchmark_run"]
        best = min(published_results(data).items(), key=lambda kv: kv[1])
        rows.append({"data": cfg["benchmark_data"].replace("_", " "), "checkpoint": ck.name,
                     "model": cfg["benchmark_description"],
                     "training": f"{run['train_seconds'] / 60:.0f} min, {run['steps']} steps, "
                                 f"{run.get('hardware', '2 CPU threads')}", "shipped": True,
                     "valid_nll_per_frame": res["valid_nll_per_frame"], "test_nll_per_frame": res["test_nll_per_frame"],
                     "test_frames": res["test_frames"], "eval_seconds": res["eval_seconds"],
                     "test_first_pieces": res["test_first_pieces"],
                     "best_published": f"{best[1]:.2f} ({best[0]})", "data_sha256": res["data_sha256"]})
        print(rows[-1])
    for d in map(Path, a.runs):
        res = json.loads((d / "bench_nll.json").read_text())
        data = Path(res["data"]).stem
        mat = Path(a.shared) / "benchmarks" / "bl-polyphonic" / f"{data}.mat"
        best = min(published_results(mat).items(), key=lambda kv: kv[1])
        rows.append({"data": data.replace("_", " "), "checkpoint": None, "run": d.name, "shipped": False,
                     "model": describe(res["family"], res["model"], res.get("augment_transpose"),
                                       json.loads((d / "best" / "config.json").read_text()).get("train")),
                     "training": f"{res['train_seconds'] / 60:.0f} min ({res.get('stop', 'finished')}), "
                                 f"{res['steps']} steps, "
                                 f"{res.get('threads', 2)} CPU thread{'s' if res.get('threads', 2) > 1 else ''}",
                     "valid_nll_per_frame": res["valid_nll_per_frame"], "test_nll_per_frame": res["test_nll_per_frame"],
                     "test_frames": res["test_frames"], "best_published": f"{best[1]:.2f} ({best[0]})",
                     "data_sha256": res["data_sha256"]})
        print(rows[-1])
    old = ROOT / "benchmarks" / "results-polyphonic.json"
    if old.is_file():  # keep unshipped rows whose run folder is gone
        have = {r.get("run") for r in rows}
        rows += [r for r in json.loads(old.read_text())["rows"] if not r.get("shipped", True) and r["run"] not in have]
    rows.sort(key=lambda r: (r["data"], r["test_nll_per_frame"]))
    out = {"date": datetime.date.today().isoformat(), "rows": rows}
    (ROOT / "benchmarks" / "results-polyphonic.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
