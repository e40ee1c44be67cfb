"""Whether the browser tests can run here, and what to do when they cannot.

Locally a machine without chromium or playwright skips the browser tests, with a reason that
says how to install them. In CI (the environment variable ``CI`` set, as ``bash .ci/run``
does) they fail instead: a green CI run must mean the browser tests ran.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

CHROMIUM = Path(os.environ.get("DRGI_LAB_CHROMIUM", "/usr/bin/chromium"))
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium"
INSTALL_PLAYWRIGHT = "make install (playwright is in requirements-dev.txt)"
FALSE_WORDS = {"", "0", "false", "no", "off"}

Action = Literal["run", "skip", "fail"]


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when ``CI`` is set to anything but an empty or false-like value (``0``, ``false``,
    ``no``, ``off``, any case)."""
    return environ.get("CI", "").strip().lower() not in FALSE_WORDS


def missing_requirements(
    chromium: Path = CHROMIUM,
    find_spec: Callable[[str], object] = importlib.util.find_spec,
) -> list[str]:
    """What the browser tests need and this machine lacks, each with how to install it."""
    missing = []
    if not chromium.is_file():
        missing.append(f"Debian chromium ({chromium}; install: {INSTALL_CHROMIUM})")
    if find_spec("playwright") is None:
        missing.append(f"the playwright package (install: {INSTALL_PLAYWRIGHT})")
    return missing


def decide(missing: list[str], ci: bool) -> tuple[Action, str]:
    """``("run", "")`` when nothing is missing; otherwise ``("fail", message)`` in CI and
    ``("skip", reason)`` elsewhere, naming what is missing and how to install it."""
    if not missing:
        return "run", ""
    what = "; ".join(missing)
    if ci:
        return "fail", (f"browser tests cannot run in CI (CI is set): missing {what}. "
                        "CI must run them, not skip them.")
    return "skip", f"browser tests skipped: missing {what}"


def outside_requests(urls: list[str], server: str) -> list[str]:
    """The URLs among ``urls`` whose host:port is not the app's own (``server``, e.g.
    ``http://127.0.0.1:8501``), sorted and without repeats; ``data:`` and ``blob:`` are fine."""
    own = urlsplit(server).netloc
    return sorted({u for u in urls
                   if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != own})
