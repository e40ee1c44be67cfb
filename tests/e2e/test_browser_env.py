"""When the browser tests run, skip or fail; which requests count as leaving the app; and
``.ci/run`` stopping when chromium cannot be installed. No browser is needed here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .browser_env import (
    INSTALL_CHROMIUM,
    decide,
    in_ci,
    missing_requirements,
    outside_requests,
)

REPO = Path(__file__).resolve().parents[2]


def _found(name):
    return object()


def _not_found(name):
    return None


@pytest.mark.parametrize("value, expected", [
    (None, False), ("", False), ("0", False), ("false", False), ("False", False), ("no", False),
    ("true", True), ("1", True), ("yes", True), ("github", True),
])
def test_in_ci_reads_the_ci_variable(value, expected):
    environ = {} if value is None else {"CI": value}
    assert in_ci(environ) is expected


def test_missing_requirements_names_chromium_and_playwright(tmp_path):
    chromium = tmp_path / "chromium"
    missing = missing_requirements(chromium, find_spec=_not_found)
    assert len(missing) == 2
    assert str(chromium) in missing[0] and INSTALL_CHROMIUM in missing[0]
    assert "playwright" in missing[1]
    chromium.write_text("")
    assert missing_requirements(chromium, find_spec=_found) == []
    assert ["playwright" in m for m in missing_requirements(chromium, find_spec=_not_found)] \
        == [True]


def test_decide_runs_skips_locally_and_fails_in_ci(tmp_path):
    assert decide([], ci=False) == ("run", "")
    assert decide([], ci=True) == ("run", "")
    missing = missing_requirements(tmp_path / "chromium", find_spec=_found)
    action, reason = decide(missing, ci=False)
    assert action == "skip"
    assert "apt-get update && apt-get install -y chromium" in reason
    action, message = decide(missing, ci=True)
    assert action == "fail"
    assert "CI" in message and "apt-get install -y chromium" in message


def test_outside_requests_keeps_only_other_hosts():
    server = "http://127.0.0.1:8501"
    urls = [f"{server}/", f"{server}/static/js/x.js", "ws://127.0.0.1:8501/_stcore/stream",
            "data:image/svg+xml;base64,PHN2Zy8+", "blob:http://127.0.0.1:8501/abc",
            "https://fonts.gstatic.com/s/i/x/24px.svg", "https://fonts.gstatic.com/s/i/x/24px.svg",
            "http://127.0.0.1:9999/", "http://localhost:8501/"]
    assert outside_requests(urls, server) == [
        "http://127.0.0.1:9999/", "http://localhost:8501/",
        "https://fonts.gstatic.com/s/i/x/24px.svg"]


def _fake_bin(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("with_apt", [True, False], ids=["install-fails", "no-apt-get"])
def test_ci_run_stops_when_chromium_cannot_be_installed(tmp_path, with_apt):
    """``.ci/run`` exits non-zero before ``make test`` when chromium is missing and cannot be
    installed (a fake failing apt-get, or none), instead of warning and going on."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ran_make = tmp_path / "ran-make"
    _fake_bin(bin_dir, "make", f": > {ran_make}; exit 0")  # shell builtins only
    if with_apt:
        _fake_bin(bin_dir, "apt-get", "exit 100")
    # only the fakes and the basic tools bash needs (dirname); no real apt-get on this PATH
    for tool in ("dirname",):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True,
                              text=True, check=True).stdout.strip()
        (bin_dir / tool).symlink_to(real)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path),
           "DRGI_LAB_CHROMIUM": str(tmp_path / "no-chromium")}
    bash = subprocess.run(["bash", "-c", "command -v bash"], capture_output=True, text=True,
                          check=True).stdout.strip()
    proc = subprocess.run([bash, str(REPO / ".ci" / "run")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "error:" in proc.stderr and "apt-get install -y chromium" in proc.stderr
    assert not ran_make.exists(), "make test ran although chromium is missing"


@pytest.mark.parametrize("ci", ["true", ""], ids=["ci", "local"])
def test_browser_tests_without_chromium_fail_in_ci_and_skip_locally(tmp_path, ci):
    """The browser tests themselves, run with a chromium path that does not exist: with CI set
    pytest exits non-zero, naming what is missing; without CI every test is skipped with a
    reason that says how to install chromium."""
    env = dict(os.environ, CI=ci, DRGI_LAB_CHROMIUM=str(tmp_path / "no-chromium"),
               OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(REPO / "tests" / "e2e" / "test_browser.py"), "-k", "no_request_leaves"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert INSTALL_CHROMIUM in out, out[-3000:]
    if ci:
        assert proc.returncode == 1, out[-3000:]
        assert "cannot run in CI" in out and "1 error" in out
    else:
        assert proc.returncode == 0, out[-3000:]
        assert "1 skipped" in out
