"""Checkpoints: a folder with ``model.safetensors`` and ``config.json`` (and, for a
training run's ``last``, ``trainer.safetensors`` + ``trainer.json`` with the optimizer
and RNG state). Written to a temporary folder and swapped in, so a kill at any
moment leaves either the old or the new checkpoint, never a torn one. Nothing
here unpickles: safetensors and JSON only."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tunesmith.errors import BadInputError
from tunesmith.fileio import dumps, replaced_folder

if TYPE_CHECKING:  # torch is imported where weights are read or written, so that naming a model is quick
    import torch

CHECKPOINT_VERSION = 1


def write_checkpoint(path: str | Path, model: torch.nn.Module, config: dict,
                     optimizer: torch.optim.Optimizer | None = None, trainer: dict | None = None) -> Path:
    """Write atomically: build ``path.tmp``, move the old one to ``path.old``, rename, delete old."""
    import torch
    from safetensors.torch import save_file, save_model

    path = Path(path)
    with replaced_folder(path) as tmp:
        save_model(_unwrap(model), str(tmp / "model.safetensors"))
        cfg = dict(config)
        cfg["checkpoint_version"] = CHECKPOINT_VERSION
        cfg["saved_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        (tmp / "config.json").write_text(dumps(cfg, indent=1))
        if optimizer is not None:
            tensors, meta = _flatten_optimizer(optimizer)
            tensors["rng.torch"] = torch.get_rng_state()
            save_file(tensors, str(tmp / "trainer.safetensors"))
            (tmp / "trainer.json").write_text(dumps({"optimizer": meta, "state": trainer or {}}))
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (→ its ``best``, else ``last``); survives a
    kill between the two renames of :func:`write_checkpoint`."""
    p = Path(path)
    if (p / "config.json").is_file() and (p / "model.safetensors").is_file():
        return p
    for name in ("best", "last", "best.old", "last.old"):
        q = p / name
        if (q / "config.json").is_file() and (q / "model.safetensors").is_file():
            return q
    old = p.with_name(p.name + ".old")
    if (old / "config.json").is_file():
        return old
    raise BadInputError(p, "not a tunesmith checkpoint (no config.json + model.safetensors here, "
                        "nor in best/ or last/)")


def read_config(path: str | Path) -> dict:
    p = resolve_checkpoint(path)
    try:
        return json.loads((p / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise BadInputError(p / "config.json", f"corrupt checkpoint config: {e}") from None


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    from safetensors.torch import load_model

    p = resolve_checkpoint(path) / "model.safetensors"
    try:
        missing, unexpected = load_model(model, str(p), strict=True)
    except Exception as e:
        raise BadInputError(p, f"weights do not fit the model in config.json: {str(e)[:200]}") from None


def load_trainer(optimizer: torch.optim.Optimizer, path: str | Path) -> dict:
    import torch
    from safetensors.torch import load_file

    p = Path(path)
    tensors = load_file(str(p / "trainer.safetensors"))
    info = json.loads((p / "trainer.json").read_text())
    _restore_optimizer(optimizer, tensors, info["optimizer"])
    torch.set_rng_state(tensors["rng.torch"])
    return info["state"]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    import torch

    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict = {}
    for key, v in tensors.items():
        if not key.startswith("opt."):
            continue
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = v
    for idx, d in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(d)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
