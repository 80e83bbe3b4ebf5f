"""The package's layering, checked on its source with ``ast`` (nothing is imported).

Layers, lowest first; a module may import from its own layer and the layers below, never from a
layer above, and the import graph of the package's modules has no cycles:

0. model: ``discretisation``, ``network``, ``neurons``, ``validation`` (argument checks)
1. data sets: ``datasets``
2. engines: ``engine`` (the interface, the registry, the reference engine)
3. engines built on the reference engine: ``spinnaker2``
4. training core: ``training``
5. PyNN layer: ``simulator``, ``populations``, ``projections``, ``recording``, ``control``,
   ``standardmodels``, ``compile``, ``connectors``, ``eventprop``, ``extra_models``,
   ``pynn_alias`` and the package itself
6. applications: ``tasks``, ``crossvalidation``, ``cli``

``brian2_reference`` is independent of ``pynn_eventprop``; tests, benchmarks and examples do
not edit ``sys.path``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pynn_eventprop"
LAYERS = {
    "discretisation": 0,
    "network": 0,
    "neurons": 0,
    "validation": 0,
    "datasets": 1,
    "engine": 2,
    "spinnaker2": 3,
    "training": 4,
    "simulator": 5,
    "populations": 5,
    "projections": 5,
    "recording": 5,
    "control": 5,
    "standardmodels": 5,
    "compile": 5,
    "connectors": 5,
    "eventprop": 5,
    "extra_models": 5,
    "pynn_alias": 5,
    "": 5,
    "tasks": 6,
    "crossvalidation": 6,
    "cli": 6,
    "interop": 6,
}


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """Modules of the package that ``name`` imports (anywhere in the file), with their
    parent packages (importing ``a.b.c`` runs ``a.b``'s ``__init__``); the root and the
    packages ``name`` itself lives in (already being imported) are left out."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets.add(module)
            targets.update(f"{module}.{alias.name}" for alias in node.names)
    found = set()
    for target in targets:
        parts = target.split(".")
        for k in range(2, len(parts) + 1):
            candidate = ".".join(parts[:k])
            if candidate in modules and not (name + ".").startswith(candidate + "."):
                found.add(candidate)
    return found


def _graph():
    modules = _modules(ROOT, PACKAGE)
    return modules, {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    assert top in LAYERS, f"module {name} belongs to no layer: add it to LAYERS"
    return LAYERS[top]


def test_no_module_imports_from_a_higher_layer():
    _, graph = _graph()
    upward = [
        f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})"
        for name, targets in graph.items()
        for target in targets
        if _layer(target) > _layer(name)
    ]
    assert not upward, "\n".join(upward)


def test_the_package_has_no_import_cycles():
    _, graph = _graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_brian2_reference_is_independent_of_pynn_eventprop():
    for path in sorted((ROOT / "brian2_reference").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            assert not any(n.split(".")[0] == PACKAGE for n in names), path


def test_scripts_and_tests_do_not_edit_sys_path():
    for folder in ("tests", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr == "path":
                    value = node.value
                    assert not (isinstance(value, ast.Name) and value.id == "sys"), (
                        f"{path.relative_to(ROOT)}:{node.lineno} uses sys.path"
                    )
