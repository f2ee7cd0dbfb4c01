"""The layout is the architecture: folders import downward only, and `modeling/` files stand alone.

Layers (lower number = lower layer; a module may import its own folder and strictly lower layers):
modeling 0 <- processing 1 <- evaluation, synthetic 2 <- search, training 3 <- hub_cards 4 <- cli 5.
Imports inside `if __name__ == "__main__":` are entry-point shims (`python -m vidtempo.training.train_tca`
runs the CLI) and do not count. Lazy imports inside functions do count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "modeling": 0,
    "processing": 1,
    "evaluation": 2,
    "synthetic": 2,
    "search": 3,
    "training": 3,
    "hub_cards": 4,
    "cli": 5,
}
# What a `modeling/` file may import besides the standard library and its siblings: what a user who
# loads a checkpoint with trust_remote_code has (huggingface_hub, numpy and safetensors are transformers' own dependencies).
MODELING_THIRD_PARTY = {"torch", "transformers", "huggingface_hub", "numpy", "safetensors"}


def _is_main_guard(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _imports(tree: ast.AST):
    """(line, absolute-or-relative target, level) of every import outside `if __name__ == "__main__"`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _is_main_guard(child):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name, 0
            elif isinstance(child, ast.ImportFrom):
                yield child.lineno, child.module or "", child.level
            stack.append(child)


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{`folder/file.py`: {vidtempo folders it imports}} for every library and CLI module."""
    graph: dict[str, set[str]] = {}
    for folder in LAYERS:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            package = list(rel.parts[:-1])
            targets: set[str] = set()
            for _, name, level in _imports(ast.parse(path.read_text(encoding="utf-8"))):
                if level:
                    base = package[: len(package) - (level - 1)] if level > 1 else package
                    parts = base + (name.split(".") if name else [])
                elif name.startswith("vidtempo."):
                    parts = name.split(".")[1:]
                else:
                    continue
                if parts and parts[0] != folder:
                    targets.add(parts[0])
            graph[str(rel)] = targets
    return graph


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a folder at the same or a higher layer."""
    bad = []
    for module, targets in graph.items():
        folder = module.split("/")[0]
        for target in sorted(targets):
            if target not in LAYERS:
                bad.append(f"{module} imports unknown vidtempo folder {target!r}")
            elif LAYERS[target] >= LAYERS[folder]:
                bad.append(
                    f"{module} ({folder}, layer {LAYERS[folder]}) imports {target} (layer {LAYERS[target]})"
                )
    return bad


def folder_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles in the folder graph (depth-first search)."""
    edges: dict[str, set[str]] = {}
    for module, targets in graph.items():
        edges.setdefault(module.split("/")[0], set()).update(targets)
    cycles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_checker_sees_upward_imports_and_cycles(tmp_path):
    """The checker itself: an upward import and a two-folder cycle planted in a scratch tree are found."""
    for folder in ("modeling", "processing"):
        (tmp_path / folder).mkdir()
    (tmp_path / "modeling" / "bad.py").write_text("from ..processing.x import y\n")
    (tmp_path / "processing" / "x.py").write_text(
        "from vidtempo.modeling import z\nif __name__ == '__main__':\n    from ..cli import main\n"
    )
    graph = module_graph(tmp_path)
    assert graph["modeling/bad.py"] == {"processing"}
    assert graph["processing/x.py"] == {"modeling"}  # the __main__ shim does not count
    assert layer_violations(graph) == ["modeling/bad.py (modeling, layer 0) imports processing (layer 1)"]
    assert folder_cycles(graph) == [["modeling", "processing", "modeling"]]


def test_folders_import_downward_only():
    graph = module_graph()
    assert len(graph) > 40
    assert layer_violations(graph) == []
    assert folder_cycles(graph) == []


def test_every_folder_is_a_declared_subpackage():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for folder in LAYERS:
        assert (ROOT / folder / "__init__.py").is_file(), folder
        assert f'"vidtempo.{folder}" = "{folder}"' in pyproject, folder


def _modeling_files():
    return sorted(p.name for p in (ROOT / "modeling").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("name", _modeling_files())
def test_modeling_file_imports_only_what_checkpoints_carry(name):
    """Statically: stdlib, torch/transformers (and their own dependencies), and single-dot siblings."""
    tree = ast.parse((ROOT / "modeling" / name).read_text(encoding="utf-8"))
    stdlib = set(sys.stdlib_module_names)
    for line, target, level in _imports(tree):
        if level:
            assert level == 1, f"modeling/{name}:{line} reaches outside its folder ({'.' * level}{target})"
            continue
        top = target.split(".")[0]
        assert top in stdlib or top in MODELING_THIRD_PARTY, f"modeling/{name}:{line} imports {target}"


@pytest.mark.parametrize("name", _modeling_files())
def test_modeling_file_loads_alone(name, tmp_path):
    """Dynamically: the file and only the siblings it names, copied into a fresh folder without vidtempo
    importable, import as a package (what trust_remote_code does with a checkpoint's code files)."""
    from isolation import BLOCK_VIDTEMPO

    package = tmp_path / "ckpt_code"
    package.mkdir()
    (package / "__init__.py").write_text("")
    todo, copied = [name], set()
    while todo:
        current = todo.pop()
        if current in copied:
            continue
        copied.add(current)
        text = (ROOT / "modeling" / current).read_text(encoding="utf-8")
        (package / current).write_text(text)
        for _, target, level in _imports(ast.parse(text)):
            if level == 1 and target:
                todo.append(target.split(".")[0] + ".py")
    script = (
        BLOCK_VIDTEMPO + f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        f"import importlib; importlib.import_module('ckpt_code.{name[:-3]}')\nprint('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    if "tca" not in name:  # a LocVTP or backbone checkpoint must not carry TCA's model code
        assert "modeling_tca.py" not in copied, f"{name} needs {sorted(copied)}"


def test_readme_layout_table_matches_the_tree():
    """README's layout table names every package folder with its layer, and nothing that is not there."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d*) \| `([a-z_]+)/` \|", section, flags=re.M)
    listed = {folder: int(layer) for layer, folder in rows if layer}
    assert listed == LAYERS
    for _, folder in rows:
        assert (ROOT / folder).is_dir(), f"README lists {folder}/, which does not exist"
