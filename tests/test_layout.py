"""The package layout: public names are what they claim, and no module imports in a circle."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import twisted_ch

PACKAGE = pathlib.Path(twisted_ch.__file__).parent


@pytest.mark.parametrize(
    "module",
    ["twisted_ch", "twisted_ch.testing", "twisted_ch.extronlib.interface", "twisted_ch.tap"],
)
def test_exports(module: str) -> None:
    """Every name in a public module's __all__ exists, and its objects say where they live."""
    mod = importlib.import_module(module)
    for name in mod.__all__:
        obj = getattr(mod, name)
        home = getattr(obj, "__module__", None)
        if home is not None and isinstance(obj, type):
            assert home.startswith("twisted_ch"), (name, home)


def test_testing_reexports_every_simulator() -> None:
    import twisted_ch.testing as testing

    for name in (
        "DeviceServer",
        "FakeEndpoint",
        "FlappingDevice",
        "PJLinkServer",
        "SISServer",
        "SNMPAgent",
        "SSHTestServer",
        "listenLoopback",
    ):
        assert name in testing.__all__
        assert getattr(testing, name).__module__.startswith("twisted_ch.testing."), name


def _moduleName(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _isTypeChecking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: pathlib.Path, name: str) -> set[str]:
    """
    twisted_ch modules C{name} imports: at its top level and inside its functions (a function's
    import is a circle too, only a later one), not those under C{if TYPE_CHECKING:}.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    body: list[ast.AST] = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and _isTypeChecking(node):
            body.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("twisted_ch"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if node.level:
                base = name.split(".")[: -node.level]
                module = ".".join([*base, module])
            if module.startswith("twisted_ch"):
                found.add(module)
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    if (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists() or (
                        PACKAGE.parent / sub.replace(".", "/") / "__init__.py"
                    ).exists():
                        found.add(sub)
        else:
            body.extend(ast.iter_child_nodes(node))
    return found


def _importGraph() -> dict[str, set[str]]:
    """Each twisted_ch module and the twisted_ch modules importing it runs (parents too)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _moduleName(path)
        deps = set()
        for dep in _imports(path, name):
            # importing a.b.c runs a and a.b first
            parts = dep.split(".")
            deps.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        deps.discard(name)
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def test_the_import_scan_sees_imports_inside_functions(tmp_path: pathlib.Path) -> None:
    """A function's import counts; one under C{if TYPE_CHECKING:} does not."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from twisted_ch import _typing_only\n"
        "class C:\n"
        "    def f(self):\n"
        "        from twisted_ch.service import _web\n"
        "        import twisted_ch._link\n",
        encoding="utf-8",
    )
    found = _imports(source, "twisted_ch.m")
    assert {"twisted_ch.service", "twisted_ch.service._web", "twisted_ch._link"} <= found
    assert not any("_typing_only" in f for f in found)


def test_testing_imports_nothing_of_the_service() -> None:
    """The simulators users' tests import stand alone: twisted_ch.testing needs no service."""
    graph = _importGraph()
    reached: set[str] = set()
    todo = [n for n in graph if n == "twisted_ch.testing" or n.startswith("twisted_ch.testing.")]
    while todo:
        node = todo.pop()
        if node in reached:
            continue
        reached.add(node)
        todo.extend(graph.get(node, ()))
    service = sorted(n for n in reached if n.startswith("twisted_ch.service"))
    assert service == [], service


def test_no_import_circles() -> None:
    """No module imports in a circle, counting imports inside functions."""
    graph = _importGraph()
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if seen.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in seen:
                visit(dep)
        stack.pop()
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node)
