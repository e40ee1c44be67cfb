"""The import direction tvr <- analysis <- app is enforced by scanning imports with ast (the app
imports no torch itself: models run in tvr/analysis), and the app's modules import each other
without a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "tvr": {"analysis", "app", "streamlit", "pandas", "plotly", "umap"},
    "analysis": {"app", "streamlit"},
    "app": {"torch", "transformers"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_layers_import_one_way():
    violations = []
    for layer, forbidden in FORBIDDEN.items():
        files = sorted((ROOT / layer).rglob("*.py"))
        assert files, f"layer {layer}/ has no Python files"
        for f in files:
            bad = imported_roots(f) & forbidden
            if bad:
                violations.append(f"{f.relative_to(ROOT)} imports {sorted(bad)}")
    assert not violations, "layer violations:\n" + "\n".join(violations)


def test_scanner_detects_a_violation(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import streamlit as st\nfrom analysis.rankings import x\n")
    assert imported_roots(f) == {"streamlit", "analysis"}


# ------------------------------------------------------------------ import cycles inside app/


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file for every ``.py`` under ``root / package``
    (``pkg/sub/__init__.py`` is ``pkg.sub``)."""
    out: dict[str, Path] = {}
    for f in sorted((root / package).rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of the dotted ``name`` that is one of ``modules``."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def internal_imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``module`` imports anywhere in its file (top level or
    inside a function: a deferred import still closes a circle), relative imports resolved.
    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            hit = _resolve(target, modules)
            if hit is not None and hit != module:
                found.add(hit)
    return found


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """Every import circle among the modules of ``package``: one list per strongly connected
    component of the import graph with more than one module, each a closed path
    ``[a, b, ..., a]`` through the component."""
    modules = module_files(root, package)
    graph = {m: internal_imports(m, f, modules) for m, f in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                components.append(sorted(component))

    for m in sorted(graph):
        if m not in index:
            visit(m)

    cycles = []
    for component in components:
        members = set(component)
        start = component[0]
        path, seen = [start], {start}
        while True:  # walk inside the component until a module repeats
            nxt = sorted(graph[path[-1]] & members)
            step = next((n for n in nxt if n == start), None) or next(
                (n for n in nxt if n not in seen), nxt[0])
            path.append(step)
            if step in seen:
                break
            seen.add(step)
        cycles.append(path[path.index(path[-1]):])
    return cycles


def test_app_modules_import_without_a_circle():
    cycles = import_cycles(ROOT, "app")
    assert not cycles, "import circles in app/:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_cycle_finder_finds_deferred_and_relative_circles(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    from pkg.a import x\n")  # deferred
    (pkg / "d.py").write_text("import pkg.a\nfrom pkg import sub\n")  # outside the circle
    assert internal_imports("pkg.sub.b", pkg / "sub" / "b.py", module_files(tmp_path, "pkg")) == {
        "pkg.sub.c"}
    assert import_cycles(tmp_path, "pkg") == [["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]]
    (pkg / "sub" / "c.py").write_text("x = 1\n")
    assert import_cycles(tmp_path, "pkg") == []


# ------------------------------------------------------------------ one owner of bundle files

# shipped code must reach bundle files through analysis.bundle; tests/ is left out (the
# format's own tests, tests/test_bundle*.py and tests/test_export.py, open the files on purpose)
BUNDLE_OWNER = ROOT / "analysis" / "bundle"
BUNDLE_SCANNED = ("tvr", "analysis", "app", "benchmarks")


def _bundle_names() -> tuple[set[str], set[str]]:
    """(the file and folder names of a bundle, the constants of analysis.bundle.files that
    spell them)."""
    from analysis.bundle import files

    names = set(files.BUNDLE_FILES)
    constants = {k for k, v in vars(files).items()
                 if k.isupper() and isinstance(v, str) and (v in names or v == files.THUMB_PATTERN)}
    return names, constants | {"BUNDLE_FILES", "THUMB_PATTERN"}


def bundle_file_accesses(path: Path) -> list[str]:
    """Where ``path`` spells a bundle file: a string literal naming one (``"meta.json"``,
    ``"analysis/*/ranks.npz"``, ``f"thumbs/{v}.jpg"``, ``bundle / "thumbs"``), or an import of
    the file-name constants of :mod:`analysis.bundle.files` (or of the module itself)."""
    from analysis.bundle.files import THUMBS

    names, constants = _bundle_names()
    dotted = names - {THUMBS}
    tree = ast.parse(path.read_text(), filename=str(path))
    path_operands = {id(n) for b in ast.walk(tree)
                     if isinstance(b, ast.BinOp) and isinstance(b.op, ast.Div)
                     for n in (b.left, b.right)}
    path_operands |= {id(a) for c in ast.walk(tree) if isinstance(c, ast.Call)
                      and isinstance(c.func, ast.Attribute) and c.func.attr == "joinpath"
                      for a in c.args}
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            s = node.value
            if any(c.isspace() for c in s):  # prose (docstrings, messages), not a path
                continue
            if (s.split("/")[-1] in dotted or f"{THUMBS}/" in s
                    or (s == THUMBS and id(node) in path_operands)):
                found.append(f"{where} names bundle file {s!r}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "analysis.bundle" or node.module.startswith("analysis.bundle.")):
            for alias in node.names:
                if alias.name in constants or alias.name == "files" or (
                        node.module == "analysis.bundle.files"):
                    found.append(f"{where} imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names
                      if a.name == "analysis.bundle.files"]
    return found


def test_only_analysis_bundle_opens_bundle_files():
    violations = []
    for layer in BUNDLE_SCANNED:
        for f in sorted((ROOT / layer).rglob("*.py")):
            if BUNDLE_OWNER in f.parents:
                continue
            violations += [f"{f.relative_to(ROOT)}: {v}" for v in bundle_file_accesses(f)]
    assert not violations, (
        "bundle files opened outside analysis/bundle/ (use Bundle, read_meta, meta_dict, "
        "BundleWriter):\n" + "\n".join(violations))


def test_bundle_file_scanner_detects_accesses(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import json\n"
        "meta = json.loads((bundle_dir / 'meta.json').read_text())\n"
        "sim = np.load(run.glob('analysis/*/similarity.npy'))\n"
        "thumb = bundle_dir / f'thumbs/{v}.jpg'\n"
        "folder = bundle_dir / 'thumbs'\n"
        "other = bundle_dir.joinpath('thumbs')\n"
        "from analysis.bundle.files import RANKS\n"
        "from analysis.bundle import META, Bundle\n"
        "from analysis.bundle import files\n"
        "import analysis.bundle.files\n"
    )
    found = bundle_file_accesses(bad)
    for expected in ("'meta.json'", "similarity.npy", "'thumbs/'", "bad.py:5 names bundle file",
                     "bad.py:6 names bundle file", "analysis.bundle.files.RANKS",
                     "analysis.bundle.META", "analysis.bundle.files", "bad.py:10 imports"):
        assert any(expected in f for f in found), (expected, found)
    assert not any("analysis.bundle.Bundle" in f for f in found)  # the API is allowed

    good = tmp_path / "good.py"
    good.write_text(
        '"""Reads meta.json of a bundle through analysis.bundle."""\n'
        "from analysis.bundle import Bundle, read_meta\n"
        "shard = {'thumbs': [], 'emb': None}\n"
        "gt = root / 'synthvtt_meta.json'\n"
        "caps = root / 'raw-captions.json'\n"
        "raise ValueError('no meta.json in this bundle')\n"
    )
    assert bundle_file_accesses(good) == []
