"""Ship a polyphonic-benchmark run's best checkpoint (weights stored as float16 to halve
the size; evaluation runs in float32) into src/tunesmith/assets/benchmarks/NAME.

    python scripts/ship_bench_checkpoint.py runs/bench-jsb-lstm55 jsb-lstm JSB_Chorales \\
        "LSTM 2×512, dropout 0.3, frame tokens, transposition augmentation" "tunesmith bench nll ..." \\
        ["1 CPU thread, beside another run"]

The last argument says what the run trained on (default: the thread count the run recorded).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

ASSETS = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "assets" / "benchmarks"


def main() -> None:
    run, name, data, description, command = sys.argv[1:6]
    src = Path(run) / "best"
    dst = ASSETS / name
    dst.mkdir(parents=True, exist_ok=True)
    w = load_file(str(src / "model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in w.items()}, str(dst / "model.safetensors"))
    cfg = json.loads((src / "config.json").read_text())
    res = json.loads((Path(run) / "bench_nll.json").read_text())
    hardware = sys.argv[6] if len(sys.argv) > 6 else f"{res.get('threads', 2)} CPU threads"
    cfg.update(benchmark_data=data, benchmark_description=description,
               benchmark_run={"train_seconds": res["train_seconds"], "steps": res["steps"], "stop": res["stop"],
                              "command": command, "hardware": hardware, "test_nll_per_frame_float32": res["test_nll_per_frame"],
                              "valid_nll_per_frame_float32": res["valid_nll_per_frame"]})
    (dst / "config.json").write_text(json.dumps(cfg, indent=1))
    (dst / "MODEL_CARD.md").write_text(
        f"# {name}\n\n{description}, trained on the {data} train split only, checkpoint chosen on valid.\n\n"
        f"    {command}\n\nTraining: {res['train_seconds'] / 60:.0f} min, {res['steps']} steps ({res['stop']}). "
        f"Weights stored as float16; the figure in BENCHMARKS.md is what these weights give "
        f"(`tunesmith bench nll --data {data}.mat --checkpoint {name}`).\n")
    print(f"shipped {dst}")


if __name__ == "__main__":
    main()
