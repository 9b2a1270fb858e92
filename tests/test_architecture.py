"""Imports run one way: music, store → represent → models → generate / train → evaluate → mir →
recommend → cli.

Every import counts, also one inside a function (a function-local import must not hide
an upward dependency or a cycle)."""

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "tunesmith"
LAYERS = {"errors": 0, "fileio": 0, "progress": 0, "music": 1, "store": 1, "represent": 2, "models": 3, "generate": 4, "train": 4,
          "evaluate": 5, "mir": 6, "recommend": 7,
          "cli": 8, "cli_common": 8, "cli_models": 8, "cli_audio": 8, "cli_evaluate": 8, "cli_mir": 8, "cli_store": 8,
          "cli_studio": 8, "studio": 8,
          "__main__": 9}


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in SRC.rglob("*.py"):
        mod = _module(f)
        deps = out.setdefault(mod, set())
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tunesmith"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("tunesmith"))
    return out


def _layer(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (the public API, __version__)


def test_every_module_belongs_to_a_layer():
    assert {_layer(m) for m in _imports()} - {None} <= set(LAYERS)


def test_no_module_imports_a_layer_above_it_or_a_sibling_layer():
    bad = []
    for mod, deps in _imports().items():
        a = _layer(mod)
        if a is None:
            continue
        for dep in deps:
            b = _layer(dep)
            if b is None or a == b:
                continue
            if LAYERS[b] > LAYERS[a] or (LAYERS[b] == LAYERS[a] and not a.startswith("cli")):
                bad.append(f"{mod} -> {dep}")
    assert bad == []


def test_no_import_cycles_between_modules():
    graph = _imports()
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d not in graph or _layer(d) is None or _layer(m) is None:
                continue
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]) if d in stack else f"{m} -> {d}")
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


@pytest.mark.parametrize("layer", ["music", "represent", "models", "generate", "train", "evaluate"])
def test_library_layers_never_import_the_cli(layer):
    for mod, deps in _imports().items():
        if _layer(mod) == layer:
            assert not [d for d in deps if (_layer(d) or "").startswith("cli")], mod
