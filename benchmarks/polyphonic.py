"""Re-evaluate the shipped polyphonic-benchmark checkpoints (JSB Chorales, Nottingham) on
their test splits with `tunesmith bench nll --checkpoint`, and record the figures.

    python benchmarks/polyphonic.py [--shared ../shared]

Writes benchmarks/results-polyphonic.json (BENCHMARKS.md is rebuilt by benchmarks/run.py);
tests/test_bench_nll.py checks the shipped JSB figure against that file.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    a = ap.parse_args()
    from tunesmith.evaluate.polyphonic import PUBLISHED

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
        best = min(PUBLISHED[cfg["benchmark_data"]].items(), key=lambda kv: kv[1])
        rows.append({"data": cfg["benchmark_data"].replace("_", " "), "checkpoint": ck.name,
                     "model": cfg["benchmark_description"],
                     "training": f"{run['train_seconds'] / 60:.0f} min, {run['steps']} steps, 2 CPU cores",
                     "valid_nll_per_frame": res["valid_nll_per_frame"], "test_nll_per_frame": res["test_nll_per_frame"],
                     "test_frames": res["test_frames"], "eval_seconds": res["eval_seconds"],
                     "best_published": f"{best[1]:.2f} ({best[0]})", "data_sha256": res["data_sha256"]})
        print(rows[-1])
    out = {"date": datetime.date.today().isoformat(), "rows": rows}
    (ROOT / "benchmarks" / "results-polyphonic.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
