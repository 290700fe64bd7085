"""No import circle in src/: a static graph of every import, module-level or inside a function.

A module ``A`` depends on ``B`` when it imports ``B`` or something from it (``from B import
x`` depends on ``B.x`` when that is a module of its own). The check reads the sources only,
so it costs milliseconds and imports nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """Each module of ``root`` -> the modules of ``root`` it imports."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {}
    for name, (path, package) in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        edges.add(f"{target}.{alias.name}")
                    elif target in modules:
                        edges.add(target)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_circle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (package / "b.py").write_text("from . import a\n")
    (package / "c.py").write_text("import pkg.a\n")
    graph = import_graph(tmp_path)
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_circle_in_src():
    graph = import_graph()
    assert "model_zoo.registry" in graph and "eager_llm.cli" in graph
    assert cycles(graph) == []


def test_smolvlm_does_not_import_the_registry():
    graph = import_graph()
    assert "model_zoo.smolvlm" in graph["model_zoo.registry"]
    assert not graph["model_zoo.smolvlm"] & {"model_zoo", "model_zoo.registry"}


def _systems_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a.split(".")[0], b.split(".")[0]) for a, targets in graph.items() for b in targets}


def test_the_two_systems_share_code_only_through_model_zoo():
    edges = _systems_edges(import_graph())
    assert ("observe_r1", "model_zoo") in edges and ("eager_llm", "model_zoo") in edges
    assert not edges & {("observe_r1", "eager_llm"), ("eager_llm", "observe_r1")}


OBSERVE_R1_STAGES = ["data", "rewards", "evaluation", "ladder", "training", "align", "demo", "cli"]


def test_observe_r1_stages_import_only_earlier_stages():
    stage = {name: i for i, name in enumerate(OBSERVE_R1_STAGES)}
    later = []
    for source, targets in import_graph().items():
        parts = source.split(".")
        if parts[0] != "observe_r1" or len(parts) == 1:
            continue
        assert parts[1] in stage, f"{source}: a stage of its own? add it to OBSERVE_R1_STAGES"
        for target in targets:
            into = target.split(".")
            if into[0] == "observe_r1" and len(into) > 1 and stage[into[1]] > stage[parts[1]]:
                later.append(f"{source} -> {target}")
    assert later == []
