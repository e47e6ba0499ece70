"""The layering of ``docs/architecture.md``, read from every module's source: no import circle
among spiketwin's modules (imports inside functions count), no import from a higher layer, and
an import inside a function only for a heavy dependency, with a comment saying so."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"sw": "spiketwin", "hw": "spiketwin.hw", "boards": "spiketwin.boards", "sim": "spiketwin.sim",
            "formal": "spiketwin.formal"}


def modules() -> dict:
    """Every spiketwin module's dotted name -> its file."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = package.split(".") + list(path.relative_to(ROOT / folder).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known) -> list:
    """(target module, line, inside a function, the line's text) of each spiketwin import in ``path``.
    ``from package import name`` counts as importing the submodule ``name`` when there is one."""
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, inner: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue                     # names for annotations only: never executed
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in child.names]
            else:
                visit(child, inner or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
                continue
            for target in targets:
                if target == "spiketwin" or target.startswith("spiketwin."):
                    while target not in known and "." in target:
                        target = target.rpartition(".")[0]
                    if target != name:
                        found.append((target, child.lineno, inner, lines[child.lineno - 1]))
            if inner and not any(t == "spiketwin" or t.startswith("spiketwin.") for t in targets):
                found.append((None, child.lineno, inner, lines[child.lineno - 1]))

    visit(tree, False)
    return found


def layers() -> dict:
    """Module pattern -> layer, from the table of ``docs/architecture.md``."""
    table = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        row = re.match(r"\| (\d+) \| ([^|]+) \|", line)
        if row:
            for pattern in row.group(2).split(","):
                pattern = pattern.strip()
                table[pattern if pattern == "spiketwin" else f"spiketwin.{pattern}"] = int(row.group(1))
    return table


def layer_of(module: str, table: dict) -> int:
    """A module's layer: its own row, else the nearest package's ``package.*``."""
    if module in table:
        return table[module]
    parent = module.rpartition(".")[0]
    while parent:
        if f"{parent}.*" in table:
            return table[f"{parent}.*"]
        parent = parent.rpartition(".")[0]
    raise KeyError(module)


def graph(found: dict) -> dict:
    return {name: {t for t, *_ in imports(name, path, found) if t is not None} for name, path in found.items()}


def cycles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            connect(v)
    return out


def upward(found: dict, table: dict) -> list:
    """Each import of a module from a higher layer: (importer, line, target)."""
    wrong = []
    for name, path in found.items():
        for target, line, _, _ in imports(name, path, found):
            if target is not None and layer_of(target, table) > layer_of(name, table):
                wrong.append((name, line, target))
    return wrong


def test_every_module_has_a_layer():
    table = layers()
    missing = [name for name in modules() if not _placed(name, table)]
    assert not missing, f"modules missing from docs/architecture.md's table: {missing}"


def _placed(name, table) -> bool:
    try:
        layer_of(name, table)
    except KeyError:
        return False
    return True


def test_no_import_cycle():
    assert cycles(graph(modules())) == []


def test_no_import_from_a_higher_layer():
    assert upward(modules(), layers()) == []


def test_imports_inside_functions_are_heavy_and_say_so():
    """In sw/, an import inside a function is a heavy dependency, commented on its line."""
    found = modules()
    silent = [f"{found[name].relative_to(ROOT)}:{line}: {text.strip()}"
              for name in found if found[name].is_relative_to(ROOT / "sw")
              for _, line, inner, text in imports(name, found[name], found)
              if inner and "# heavy" not in text]
    assert not silent, "imports inside functions without a '# heavy: ...' comment:\n" + "\n".join(silent)


def test_a_planted_cycle_and_an_upward_import_are_caught(tmp_path):
    edges = graph(modules())
    edges["spiketwin.network"] = edges["spiketwin.network"] | {"spiketwin.config"}   # config imports models -> network
    assert any("spiketwin.network" in c and "spiketwin.config" in c for c in cycles(edges))
    table = layers()
    found = modules()
    planted = tmp_path / "planted.py"
    planted.write_text(found["spiketwin.fixedpoint"].read_text() + "\n\ndef f():\n    from .twin import simulate\n")
    found["spiketwin.fixedpoint"] = planted
    assert [(n, t) for n, _, t in upward(found, table)] == [("spiketwin.fixedpoint", "spiketwin.twin")]


@pytest.mark.parametrize("module", ["spiketwin.link.protocol", "spiketwin.hw.link", "spiketwin.formal.slip"])
def test_the_link_protocol_imports_neither_pyserial_nor_the_twin(module):
    code = (f"import sys, {module}; bad = [m for m in ('serial', 'spiketwin.twin', 'spiketwin.link.client') "
            f"if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
