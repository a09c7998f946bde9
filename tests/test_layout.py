"""The layout states what may load what: which packages import torch, datasets or yaml at module level,
and no import circle between modules. Read from the source (module-level imports, transitively), so
the table below and the package say the same thing; tests/test_options.py, tests/cli and
tests/serve check the same rule on running processes.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seq2seq"
HEAVY = ("torch", "datasets", "yaml")

# What each part of the package may import at module level (directly or through other modules). A
# module not named takes its package's row; the top-level modules are "seq2seq". Everything on the
# translation path of an exported model, the server and the runtime is in a row without torch.
ALLOWED: dict[str, frozenset[str]] = {
    "seq2seq": frozenset(),
    "seq2seq.config": frozenset({"yaml"}),  # the recipe is YAML
    "seq2seq.devices": frozenset({"torch"}),  # device names → torch devices, for the torch backend and training
    "seq2seq.cli": frozenset(),
    "seq2seq.data": frozenset({"torch"}),
    "seq2seq.data.corpus": frozenset({"torch", "yaml"}),  # datasets loads inside load_corpus
    "seq2seq.model": frozenset({"torch", "yaml"}),
    "seq2seq.training": frozenset({"torch", "yaml"}),
    "seq2seq.modeldir": frozenset(),
    "seq2seq.modeldir.card": frozenset({"yaml"}),  # the card's front matter
    "seq2seq.decoding": frozenset(),
    "seq2seq.decoding.torch_search": frozenset({"torch", "yaml"}),  # yaml through the model's config types
    "seq2seq.decoding.torch_constraints": frozenset({"torch"}),
    "seq2seq.inference": frozenset(),
    "seq2seq.export": frozenset(),
    "seq2seq.export.exporter": frozenset({"torch", "yaml"}),
    "seq2seq.serve": frozenset(),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _module_level_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules a module imports when it is imported: its top-level statements (also inside a
    top-level try or if, but not under TYPE_CHECKING), not the imports inside functions."""
    names: set[str] = set()
    pending = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Try, ast.If)) and not _is_type_checking(node):
            pending += node.body + node.orelse + [s for h in getattr(node, "handlers", []) for s in h.body]
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in modules)
    # Importing a.b.c runs a/__init__ and a/b/__init__ first.
    return names | {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1) if n.startswith("seq2seq")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _module_level_imports(path, modules) for name, path in modules.items()}


def _heavy(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Each module → the heavy libraries importing it loads, through any chain of module-level imports."""
    reach = {}
    for start in graph:
        seen, pending = {start}, [start]
        while pending:
            for imported in graph[pending.pop()]:
                if imported in graph and imported not in seen:
                    seen.add(imported)
                    pending.append(imported)
        reach[start] = {lib for m in seen for imported in graph[m] for lib in HEAVY if imported == lib or imported.startswith(lib + ".")}
    return reach


def _row(module: str) -> str:
    """The row of ALLOWED that speaks for a module: its own, else its nearest package's."""
    while module not in ALLOWED:
        module = module.rsplit(".", 1)[0]
    return module


def _allowed(module: str) -> frozenset[str]:
    return ALLOWED[_row(module)]


def test_heavy_imports_stay_where_the_table_allows():
    heavy = _heavy(_graph())
    wrong = {m: sorted(libs - _allowed(m)) for m, libs in heavy.items() if libs - _allowed(m)}
    assert not wrong, f"modules importing what their package may not, at module level: {wrong} (import it inside the function that needs it)"


def test_the_table_is_not_looser_than_the_package():
    """Every row that allows a library has a module that uses the allowance, so the table stays a description."""
    heavy = _heavy(_graph())
    used: dict[str, set[str]] = {row: set() for row in ALLOWED}
    for module, libs in heavy.items():
        used[_row(module)] |= libs
    unused = {row: sorted(libs - used[row]) for row, libs in ALLOWED.items() if libs - used[row]}
    assert not unused, f"rows allowing what no module of theirs imports: {unused}; tighten the table"


def test_no_import_circle():
    graph = _graph()
    internal = {m: {i for i in imports if i in graph and i != m and not m.startswith(i + ".")} for m, imports in graph.items()}
    state: dict[str, str] = {}  # visiting | done
    circles = []

    def walk(name: str, path: list[str]) -> None:
        state[name] = "visiting"
        for nxt in sorted(internal[name]):
            if state.get(nxt) == "visiting":
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[name] = "done"

    for name in sorted(internal):
        if name not in state:
            walk(name, [name])
    assert not circles, f"import circles at module level: {circles}"


def test_the_translation_path_of_an_exported_model_is_light():
    """What seq2seq-translate and seq2seq-serve load for an exported directory before the model: no torch, datasets or yaml."""
    heavy = _heavy(_graph())
    for module in (
        "seq2seq.cli.translate",
        "seq2seq.cli.serve",
        "seq2seq.inference.translator",
        "seq2seq.export.runtime",
        "seq2seq.decoding.numpy_search",
        "seq2seq.serve.app",
        "seq2seq.modeldir.hub",
    ):
        assert heavy[module] == set(), (module, heavy[module])


def test_the_code_is_formatted():
    """`ruff format --check`, so that a change that skips the formatter fails here as well as in review
    (the README's test command runs `ruff check`, which does not look at layout)."""
    result = subprocess.run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=PACKAGE.parent, capture_output=True, text=True)
    if "No module named ruff" in result.stderr:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    assert result.returncode == 0, f"run `ruff format .`: {result.stdout}{result.stderr}"
