"""The layers of docs/ARCHITECTURE.md, checked on the source: every import of a project module (at the
top of a file or inside a function) points down core -> keras_models -> data_pipelines -> train ->
export -> mobile_demo (export and mobile_demo never import train), and no modules of one package import each other in a circle. benchmarks/ and
tests/ may import anything and are not read."""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("core", "keras_models", "data_pipelines", "train", "export", "mobile_demo")  # bottom first
# Below a layer but still out of bounds: export and the apps read a run's files, never train's code.
NOT_BELOW = {"export": {"train"}, "mobile_demo": {"train"}}


def project_modules(root: str = ROOT) -> dict[str, str]:
    """{dotted module name: file} of every .py file of the layered packages (a package is its __init__)."""
    modules = {}
    for package in LAYERS:
        for folder, dirs, files in os.walk(os.path.join(root, package)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                    modules[dotted.removesuffix(".__init__")] = path
    return modules


def _resolve(name: str, modules) -> str | None:
    """The most specific project module that `name` (a module, or a name inside one) belongs to."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, path: str, modules) -> list[tuple[str, int]]:
    """[(imported project module, line)] of one file, function-level imports included."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name` the package.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved and resolved != module:
                found.append((resolved, node.lineno))
    return found


def import_graph(root: str = ROOT) -> list[tuple[str, str, int]]:
    """[(importing module, imported module, line)] over the layered packages."""
    modules = project_modules(root)
    return sorted({(m, t, line) for m, path in modules.items() for t, line in imports(m, path, modules)})


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def may_import(importer: str, imported: str) -> bool:
    a, b = importer.split(".")[0], imported.split(".")[0]
    return a == b or (layer(imported) < layer(importer) and b not in NOT_BELOW.get(a, ()))


def upward(edges) -> list[str]:
    """Imports against the layers: of a package above, or of one that NOT_BELOW rules out."""
    return sorted(f"{m}:{line} imports {t} ({t.split('.')[0]} is {'above' if layer(t) > layer(m) else 'out of bounds for'} "
                  f"{m.split('.')[0]})" for m, t, line in edges if not may_import(m, t))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def package_cycles(edges) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for m, t, _ in edges:
        a, b = m.split(".")[0], t.split(".")[0]
        if a != b:
            graph.setdefault(a, set()).add(b)
    return cycles(graph)


def module_cycles(edges) -> list[list[str]]:
    """Circles of modules inside one package (imports between packages are the layers' business)."""
    graph: dict[str, set[str]] = {}
    for m, t, _ in edges:
        if m.split(".")[0] == t.split(".")[0]:
            graph.setdefault(m, set()).add(t)
    return cycles(graph)


def test_imports_point_down_the_layers_without_cycles():
    edges = import_graph()
    up, pkg_cycles, mod_cycles = upward(edges), package_cycles(edges), module_cycles(edges)
    print(f"\n{len(edges)} project imports; {len(up)} against the layers (upward or out of bounds), {len(pkg_cycles)} cycles between packages, "
          f"{len(mod_cycles)} cycles between modules of a package")
    problems = up + [" <-> ".join(c) + " (packages in a circle of imports)" for c in pkg_cycles] \
        + [" <-> ".join(c) + " (modules in a circle of imports)" for c in mod_cycles]
    assert not problems, "imports against docs/ARCHITECTURE.md:\n  " + "\n  ".join(problems)


def test_the_checker_sees_what_it_must(tmp_path):
    """Function-level, relative and `from pkg import module` imports are read; an upward import and a
    circle are reported."""
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "core" / "a.py").write_text("def f():\n    from train import b\n")
    (tmp_path / "train" / "b.py").write_text("from . import c\n")
    (tmp_path / "train" / "c.py").write_text("import train.b\nfrom core.a import f\n")
    (tmp_path / "export" / "d.py").write_text("from train.c import f\n")
    edges = import_graph(str(tmp_path))
    assert sorted((m, t) for m, t, _ in edges) == [("core.a", "train.b"), ("export.d", "train.c"), ("train.b", "train.c"),
                                                   ("train.c", "core.a"), ("train.c", "train.b")]
    assert upward(edges) == ["core.a:2 imports train.b (train is above core)",
                             "export.d:1 imports train.c (train is out of bounds for export)"]
    assert package_cycles(edges) == [["core", "train"]]
    assert module_cycles(edges) == [["train.b", "train.c"]]


def test_the_layers_are_the_packages():
    """Every top-level package with Python code is in LAYERS (or is benchmarks / tests), so none goes unchecked."""
    packages = {d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "__init__.py"))}
    assert packages - {"benchmarks", "tests"} == set(LAYERS)
