"""Export a missing or stale bundle from the app, with a progress display.

The export runs ``python -m analysis.export`` in a subprocess (the model and the video decoding
stay out of the app's process); its tqdm bars and log lines are parsed from the combined
output stream and shown as a progress bar plus the latest line.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app.state import REPO, AppRoots

logger = logging.getLogger(__name__)

# "export base:  44%|####      | 4/9 [00:01<00:02, ...]" (tqdm); group desc, pct, n, total
_TQDM = re.compile(r"^(?P<desc>[^:|]{1,80}):\s*(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)")
_TAIL_LINES = 30


def export_command(
    run_dir: Path, dataset: str, split: str, root: Path, *, umap: bool = False
) -> list[str]:
    """The command line that exports (``--force``) one bundle."""
    return [
        sys.executable, "-m", "analysis.export", "--run", str(run_dir), "--dataset", dataset,
        "--root", str(root), "--split", split, "--projection", "umap,pca" if umap else "pca",
        "--force",
    ]


def parse_progress(line: str) -> tuple[str, float] | None:
    """``(description, fraction)`` of a tqdm line, None for any other line."""
    m = _TQDM.match(line.strip())
    if not m:
        return None
    total = int(m.group("total"))
    frac = int(m.group("n")) / total if total else int(m.group("pct")) / 100.0
    return m.group("desc").strip(), max(0.0, min(1.0, frac))


def run_export(
    cmd: list[str], on_line: Callable[[str], None], *, cwd: Path = REPO
) -> tuple[int, list[str]]:
    """Run an export command, calling ``on_line`` for every output line (tqdm updates too).

    Returns:
        ``(exit status, the last output lines)``.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH", "")]))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    tail: list[str] = []
    proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    buf = b""
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(1)
        if not chunk:
            break
        buf += chunk
        parts = re.split(rb"[\r\n]", buf)
        buf = parts.pop()
        for raw in parts:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail = (tail + [line])[-_TAIL_LINES:]
                on_line(line)
    if buf.strip():
        line = buf.decode("utf-8", "replace").rstrip()
        tail = (tail + [line])[-_TAIL_LINES:]
        on_line(line)
    return proc.wait(), tail


def export_button(
    roots: AppRoots,
    run_dir: Path,
    dataset: str,
    split: str,
    root: Path | None,
    *,
    key: str,
    label: str,
) -> bool:
    """A button that exports ``run_dir``'s bundle on ``dataset``/``split`` with progress.

    Returns True when an export just finished successfully (the caller reruns the app).
    """
    if root is None:
        st.caption(
            f"Cannot export: no {dataset} dataset root found under {roots.data} (set "
            "DRGI_LAB_DATA to the folder that holds it)."
        )
        return False
    root = roots.check(root)
    run_dir = roots.check(run_dir)
    umap = st.checkbox("with UMAP map (slow)", key=f"{key}_umap", value=False,
                       help="PCA is always computed; UMAP adds 20-90 s of JIT compilation.")
    if not st.button(label, key=key, icon=":material/play_arrow:"):
        return False
    cmd = export_command(run_dir, dataset, split, root, umap=umap)
    bar = st.progress(0.0, text=f"Exporting {run_dir.name} on {dataset}-{split}…")
    latest = st.empty()

    def on_line(line: str) -> None:
        parsed = parse_progress(line)
        if parsed is not None:
            desc, frac = parsed
            # the outer "export <run>" bar is the overall progress; inner bars are detail
            if desc.startswith("export"):
                bar.progress(frac, text=f"{desc}: {100 * frac:.0f} %")
            latest.caption(f"{desc}: {100 * frac:.0f} %")
        else:
            latest.caption(line[-200:])

    with st.spinner(f"Exporting {run_dir.name}…"):
        code, tail = run_export(cmd, on_line)
    if code != 0:
        bar.empty()
        st.error(f"Export failed (exit status {code}):\n\n```\n" + "\n".join(tail[-12:]) + "\n```")
        return False
    bar.progress(1.0, text="Export done")
    return True
