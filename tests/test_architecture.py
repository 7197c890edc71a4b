"""The rules of docs/ARCHITECTURE.md, checked on the source (read with ast, nothing imported):

- every import of a project module (at the top of a file or inside a function) points down
  core -> keras_models -> data_pipelines -> train -> export -> mobile_demo, except that
  data_pipelines never imports keras_models and export and mobile_demo never import train;
  no modules of one package import each other in a circle;
- keras_models knows no command line and no run folder (no click, core.cli or core.files);
- core defines each public function name once;
- every trainer family goes through train/run.py: a frozen options dataclass, a `fit` of at most
  FIT_LINES lines, one FAMILY registration, and a command that only calls run_training;
- every model family's presets are `Preset` dataclasses in a `PRESETS` dict with `get_preset`,
  each with a name, an image size and a learning rate;
- only train/legacy.py knows the files of earlier run-folder layouts.

benchmarks/ and tests/ may import anything and are not read."""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("core", "keras_models", "data_pipelines", "train", "export", "mobile_demo")  # bottom first
# Below a layer but still out of bounds: export and the apps read a run's files, never train's code;
# the data pipelines know nothing of the models.
NOT_BELOW = {"data_pipelines": {"keras_models"}, "export": {"train"}, "mobile_demo": {"train"}}
FAMILIES = ("expression", "vae", "dcgan", "stylegan")  # train/<family>.py and keras_models/<family>/presets.py
FIT_LINES = 60
LEGACY_FILES = ("gan.weights.h5", "state.json")  # what earlier versions kept instead of backup/


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
    print(f"\n{len(edges)} project imports; {len(up)} against the layers (upward or out of bounds), "
          f"{len(pkg_cycles)} cycles between packages, {len(mod_cycles)} cycles between modules of a package")
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


def _tree(*parts: str) -> ast.Module:
    path = os.path.join(ROOT, *parts)
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def _imported_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_models_know_no_command_line_and_no_run_folder():
    found = []
    for module, path in project_modules().items():
        if module.split(".")[0] != "keras_models":
            continue
        with open(path, encoding="utf-8") as f:
            names = _imported_names(ast.parse(f.read(), path))
        found += [f"{module} imports {n}" for n in sorted(names) if n.split(".")[0] == "click" or n in ("core.cli", "core.files")]
    assert not found, found


def test_core_defines_each_public_function_once():
    where: dict[str, list[str]] = {}
    for module, path in project_modules().items():
        if module.split(".")[0] == "core":
            with open(path, encoding="utf-8") as f:
                for node in ast.parse(f.read(), path).body:
                    if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                        where.setdefault(node.name, []).append(module)
    assert not {name: mods for name, mods in where.items() if len(mods) > 1}


def _frozen_dataclass(node: ast.ClassDef) -> bool:
    for d in node.decorator_list:
        if isinstance(d, ast.Call) and any(k.arg == "frozen" and getattr(k.value, "value", False) for k in d.keywords):
            return True
    return False


def test_every_trainer_family_runs_one_way():
    """train/<family>.py: options as a frozen TrainOptions dataclass, a short `fit`, FAMILY = Family(...),
    and the command's body one run_training(FAMILY, options) call."""
    problems = []
    for family in FAMILIES:
        tree = _tree("train", f"{family}.py")
        top = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        options = [n for n in top.values() if isinstance(n, ast.ClassDef) and any(getattr(b, "id", "") == "TrainOptions" for b in n.bases)]
        if len(options) != 1 or not _frozen_dataclass(options[0]):
            problems.append(f"train/{family}.py: no frozen dataclass of TrainOptions")
        fit = top.get("fit")
        if fit is None or fit.end_lineno - fit.lineno + 1 > FIT_LINES:
            problems.append(f"train/{family}.py: fit missing or over {FIT_LINES} lines")
        registered = [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "FAMILY" for t in n.targets)
                      and isinstance(n.value, ast.Call) and getattr(n.value.func, "id", "") == "Family"]
        if len(registered) != 1:
            problems.append(f"train/{family}.py: not one FAMILY = Family(...)")
        command = top.get(family)
        body = [n for n in command.body if not isinstance(n, ast.Expr) or not isinstance(n.value, ast.Constant)] if command else []
        if not (len(body) == 1 and isinstance(body[0], ast.Expr) and getattr(body[0].value.func, "id", "") == "run_training"):
            problems.append(f"train/{family}.py: the {family} command does more than run_training(FAMILY, options)")
    assert not problems, problems


def test_every_model_family_has_presets_of_one_convention():
    problems = []
    for family in FAMILIES:
        tree = _tree("keras_models", family, "presets.py")
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assigned = {getattr(t, "id", None) for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target])}
        preset = classes.get("Preset")
        if preset is None or not _frozen_dataclass(preset) or "PRESETS" not in assigned or "get_preset" not in functions:
            problems.append(f"keras_models/{family}/presets.py: no frozen Preset, PRESETS and get_preset")
            continue
        fields = {n.target.id for n in preset.body if isinstance(n, ast.AnnAssign)}
        fields |= {n.name for n in preset.body if isinstance(n, ast.FunctionDef)}  # properties
        missing = {"name", "image_size", "lr"} - fields
        if missing:
            problems.append(f"keras_models/{family}/presets.py: Preset has no {', '.join(sorted(missing))}")
    assert not problems, problems


def test_only_legacy_knows_earlier_run_folders():
    found = []
    for module, path in project_modules().items():
        if module == "train.legacy":
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        found += [f"{module} names {name}" for name in LEGACY_FILES if f'"{name}"' in text]
    assert not found, found
