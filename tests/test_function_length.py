"""No function in the package (or the benchmark scripts) runs over ~80 lines (issue 15), unless its docstring
says why."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 80


def long_functions(folder: Path, limit: int = LIMIT) -> list[str]:
    """`file:function (lines)` for every function longer than `limit` lines whose docstring gives no reason
    (a line starting `Long because`)."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit and "Long because" not in (ast.get_docstring(node) or ""):
                    found.append(f"{path.name}:{node.name} ({length})")
    return found


def test_the_checker_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path) == [f"m.py:long ({LIMIT + 1})"]


@pytest.mark.parametrize(
    "folder",
    [
        "modeling",
        "processing",
        "evaluation",
        "synthetic",
        "search",
        "training",
        "hub_cards",
        "cli",
        "benchmarks",
    ],
)
def test_no_function_over_80_lines(folder):
    assert long_functions(ROOT / folder) == []
