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


def _topLevelImports(path: pathlib.Path, name: str) -> set[str]:
    """twisted_ch modules imported when C{name} is imported (not those imported in functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If | ast.Try):
            body.extend(node.body)
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
    return found


def test_no_import_circles() -> None:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _moduleName(path)
        deps = set()
        for dep in _topLevelImports(path, name):
            # importing a.b.c runs a and a.b first
            parts = dep.split(".")
            deps.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        deps.discard(name)
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
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
