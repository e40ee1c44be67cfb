"""A Streamlit server started by a browser test: wait until it answers its health check."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest


def wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float = 90.0) -> None:
    """Poll ``{url}/_stcore/health`` until it says ``ok``; fail the test with the server's
    output when ``proc`` exits first or ``timeout_s`` passes."""
    deadline = time.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            out = proc.stdout.read().decode() if proc.stdout else ""
            proc.kill()
            pytest.fail(f"streamlit did not become healthy on {url}:\n{out[-3000:]}")
        time.sleep(0.5)
