"""Copy a piano-roll, WaveGAN or classifier checkpoint into the package as a bundled model.

    python scripts/bundle_simple.py runs/chorale-cnn chorale-cnn --description "..."
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tunesmith.models.checkpoint import resolve_checkpoint

ASSETS = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "assets" / "models"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="a run folder (its best/ checkpoint) or a checkpoint folder")
    ap.add_argument("name")
    ap.add_argument("--description", default="")
    ap.add_argument("--command", default="", help="the command that trained it, for the model card")
    a = ap.parse_args()
    run = Path(a.run)
    src = resolve_checkpoint(run / "best" if (run / "best").is_dir() else run)
    dst = ASSETS / a.name
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "model.safetensors", dst / "model.safetensors")
    cfg = json.loads((src / "config.json").read_text())
    cfg["name"] = a.name
    (dst / "config.json").write_text(json.dumps(cfg, indent=1))
    size_mb = (dst / "model.safetensors").stat().st_size / 2**20
    rows = [f"| family | {cfg['family']} ({', '.join(f'{k}={v}' for k, v in cfg.get('model', {}).items() if not isinstance(v, list))}) |",
            f"| weights | {size_mb:.2f} MiB float32 safetensors |"]
    if "n_params" in cfg:
        rows.append(f"| parameters | {cfg['n_params']:,} |")
    if "train" in cfg:
        rows.append(f"| training | {', '.join(f'{k}={v}' for k, v in cfg['train'].items() if v is not None)} |")
    summary = run / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        rows.append(f"| run | {s.get('steps')} steps in {s.get('seconds')} s ({s.get('stop_reason')}) |")
    hist = run / "metrics.json"
    if hist.is_file():
        last = json.loads(hist.read_text())[-1]
        rows.append(f"| last epoch | {', '.join(f'{k} {v}' for k, v in last.items())} |")
    if "valid" in cfg:
        rows.append(f"| validation | {', '.join(f'{k} {v:.3f}' for k, v in cfg['valid'].items())} |")
    card = f"# {a.name}\n\n{a.description}\n\n| | |\n| --- | --- |\n" + "\n".join(rows) + "\n"
    if a.command:
        card += f"\nTrained on 2 CPU cores with:\n\n    {a.command}\n"
    (dst / "MODEL_CARD.md").write_text(card)
    print(f"bundled {a.name}: {size_mb:.2f} MiB")


if __name__ == "__main__":
    main()
