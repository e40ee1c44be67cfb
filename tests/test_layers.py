"""The import direction tvr <- analysis <- app is enforced by scanning imports with ast."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "tvr": {"analysis", "app", "streamlit", "pandas", "plotly", "umap"},
    "analysis": {"app", "streamlit"},
    "app": set(),
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
