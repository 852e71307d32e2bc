"""The import structure of src/inward: layers that only import downwards, and no import cycles.

The layers follow the data flow of the design notes (../shared/design.md, "Suggested layout"):
a lower layer never imports a higher one, not even inside a function. Inside one package any
import is allowed, but no chain of imports between modules may come back to where it started.
A failure names the import and its line: move the code to the layer it belongs to, or, when the
layering itself should change, change LAYERS here and say why in the design notes.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "records", "progress", "memory"),  # plain records and helpers every layer uses
    ("properties",),  # behaviour properties: pure functions of a response
    ("tasks",),  # object-level tasks and their strings
    ("prompts",),  # object-level and hypothetical prompts from tasks and properties
    ("models",),  # backends, weights and the precision they run in
    ("store",),  # run directories, the response cache, stage keys
    ("train",),  # finetuning data and trainers
    ("analysis",),  # statistics over scored rows
    ("report",),  # rendering: tables, figures, HTML
    ("experiments",),  # studies and their experiments, over all of the above
    ("cli",),  # the command line
)
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> list[tuple[str, int]]:
    """Every inward module ``path`` imports (module level or inside functions), with its line."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # "from inward.x import y" imports the module inward.x.y where there is one, else a
            # name of inward.x
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub if sub in modules else target, node.lineno))
    return [(t, line) for t, line in out if t in modules and t != name]


def graph() -> dict[str, list[tuple[str, int]]]:
    files = {module_name(p): p for p in SRC.joinpath("inward").rglob("*.py")}
    return {m: imports(p, set(files)) for m, p in files.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_room_has_a_layer():
    rooms = {room(m) for m in graph()} - {""}
    assert rooms <= set(RANK), f"modules outside every layer: {sorted(rooms - set(RANK))}; add them to LAYERS"


def test_no_import_runs_up_a_layer():
    upward = []
    for module, targets in graph().items():
        for target, line in targets:
            a, b = room(module), room(target)
            if a and b and RANK[b] > RANK[a]:
                upward.append(f"{module}:{line} imports {target} ({a} is below {b})")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    g = {m: sorted({t for t, _ in ts}) for m, ts in graph().items()}
    cycles, state, stack = [], dict.fromkeys(g, 0), []

    def visit(m: str) -> None:
        state[m], _ = 1, stack.append(m)
        for t in g[m]:
            if state[t] == 1:
                cycles.append(" -> ".join(stack[stack.index(t) :] + [t]))
            elif state[t] == 0:
                visit(t)
        state[m], _ = 2, stack.pop()

    for m in sorted(g):
        if state[m] == 0:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_check_sees_an_upward_import(tmp_path):
    """The checks can fail: a store module importing the CLI is reported."""
    pkg = tmp_path / "inward"
    for folder in ("store", "cli"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "main.py").write_text("from inward.store import rundir\n")
    (pkg / "store" / "rundir.py").write_text("def f():\n    from inward.cli import main\n")
    old, globals()["SRC"] = SRC, tmp_path  # the checks read the module-level SRC
    try:
        g = graph()
        assert ("inward.cli.main", 2) in g["inward.store.rundir"]
        try:
            test_no_import_runs_up_a_layer()
        except AssertionError as e:
            assert "inward.store.rundir:2 imports inward.cli.main" in str(e)
        else:
            raise AssertionError("the upward import was not reported")
        try:
            test_no_import_cycles()
        except AssertionError as e:
            assert "inward.cli.main -> inward.store.rundir" in str(
                e
            ) or "inward.store.rundir -> inward.cli.main" in str(e)
        else:
            raise AssertionError("the cycle was not reported")
    finally:
        globals()["SRC"] = old
