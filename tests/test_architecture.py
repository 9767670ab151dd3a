"""The package's shape, kept by reading the imports of every module (ast, nothing is imported).

Rules (DESIGN.md, "Package layout"):

* no import circle between modules, also not through imports inside functions;
* layers point one way: ``ui, cli, commands -> workspace, demo -> (cases, footage, gallery,
  evaluate) -> engine, quality -> models -> the base (types, errors, config, files, images,
  database, audit)``; peers in the middle layer may use each other as long as no circle forms;
* each heavy third-party library is imported from one home only;
* ``import workbench`` loads no model and no heavy library, and prints nothing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"

#: third-party top-level module -> the modules allowed to import it.
HOMES = {
    "annoy": {"workbench.gallery.index"},
    "av": {"workbench.footage.decode"},
    "onnxruntime": {"workbench.models.runtime", "workbench.models.detectors"},
    "reportlab": {"workbench.cases.report"},
    "dask": {"workbench.cluster", "workbench.footage.distributed", "workbench.gallery.sharded"},
    "distributed": {"workbench.cluster", "workbench.footage.distributed", "workbench.gallery.sharded"},
    "ipywidgets": "workbench.ui",
    "voila": "workbench.ui",
    "ipycanvas": "workbench.ui",
    "ipyevents": "workbench.ui",
    "jupyter_bbox_widget": "workbench.ui",
    "IPython": "workbench.ui",
    "matplotlib": {"workbench.evaluate.plots"},
}

#: layer of each top-level part of the package; a module may import its own layer or below.
LAYERS = {
    **dict.fromkeys(
        [
            "_lazy",
            "types",
            "errors",
            "config",
            "fileio",
            "images",
            "db",
            "audit",
            "audit_keys",
            "audit_rows",
            "access",
            "samples",
            "settings_file",
        ],
        0,
    ),
    "models": 1,
    **dict.fromkeys(["quality", "engine", "cluster"], 2),
    **dict.fromkeys(["footage", "gallery", "cases", "evaluate", "thresholds"], 3),
    **dict.fromkeys(["workspace", "demo"], 4),
    **dict.fromkeys(["ui", "cli", "commands", "__main__", "__init__"], 5),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def lazy_exports(path: Path) -> dict[str, str]:
    """name -> submodule of a package face built with ``_lazy.attach(__name__, {...})``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "attach" and len(node.args) == 2:
            return ast.literal_eval(node.args[1])
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {name for name, p in MODULES.items() if p.name == "__init__.py"}
EXPORTS = {name: lazy_exports(MODULES[name]) for name in PACKAGES}


def resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if importer in PACKAGES else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str) -> tuple[set[str], set[str]]:
    """(workbench modules, third-party top-level modules) that module ``name`` imports anywhere."""
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.split(".")[0] == "workbench" else theirs).add(
                    alias.name if alias.name.startswith("workbench") else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            if not target.startswith("workbench"):
                theirs.add(target.split(".")[0])
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if full in MODULES:
                    ours.add(full)  # a submodule imported by name
                elif target in PACKAGES and alias.name in EXPORTS[target]:
                    ours.add(f"{target}.{EXPORTS[target][alias.name]}")  # through a lazy face
                else:
                    ours.add(target)
    ours.discard(name)
    return {m for m in ours if m in MODULES}, theirs


GRAPH = {name: imports_of(name) for name in MODULES}


def part(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_of_the_package_has_a_layer():
    assert sorted({part(m) for m in MODULES} - set(LAYERS)) == []


def test_no_package_face_exports_a_name_of_its_own_submodule():
    # Once ``pkg.name`` is imported as a module, ``pkg.name`` is that module, not the function.
    clashes = sorted(f"{pkg}.{name}" for pkg, exports in EXPORTS.items() for name in exports if f"{pkg}.{name}" in MODULES)
    assert clashes == []


def test_no_import_circles():
    # Tarjan's strongly connected components over module imports.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v][0]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert circles == []


def test_no_circles_between_subpackages():
    edges = {(part(a), part(b)) for a, (deps, _) in GRAPH.items() for b in deps if part(a) != part(b)}
    middle = {p for p, layer in LAYERS.items() if layer == 3}
    both_ways = sorted((a, b) for a, b in edges if (b, a) in edges and a in middle and b in middle and a < b)
    assert both_ways == []


def test_layers_point_one_way():
    upward = sorted(f"{a} imports {b}" for a, (deps, _) in GRAPH.items() for b in deps if LAYERS[part(b)] > LAYERS[part(a)])
    assert upward == []


@pytest.mark.parametrize("library", sorted(HOMES))
def test_heavy_library_has_one_home(library):
    home = HOMES[library]
    importers = sorted(name for name, (_, theirs) in GRAPH.items() if library in theirs)
    if isinstance(home, str):
        strays = [m for m in importers if not (m == home or m.startswith(home + "."))]
    else:
        strays = [m for m in importers if m not in home]
    assert strays == [], f"{library} may only be imported in {home}"


def test_import_workbench_is_light_and_silent():
    heavy = ["onnxruntime", "onnx", "av", "annoy", "cv2", "ipywidgets", "dask", "reportlab", "insightface", "pandas", "numpy"]
    code = f"import sys, workbench; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert result.stderr == ""


def test_public_api_is_small_sorted_complete_and_documented():
    import workbench

    assert workbench.__all__ == sorted(workbench.__all__)
    assert 15 <= len(workbench.__all__) <= 30, f"the public API should be about twenty names, has {len(workbench.__all__)}"
    undocumented = []
    for name in workbench.__all__:
        value = getattr(workbench, name)  # every name resolves
        if not (getattr(value, "__doc__", None) or "").strip():
            undocumented.append(name)
    assert undocumented == []
    assert set(dir(workbench)) >= set(workbench.__all__)
