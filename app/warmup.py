"""Background warm-up: the live search's heavy imports start when the app starts.

The first live query used to wait ~10 s (2 cores) for ``import torch`` and ``transformers``'
CLIP modules before its text tower could even be built; the pages themselves need neither. At
start the app imports them in a daemon thread, once per process, while the user reads the
Overview, so the first query pays only for building the tower (well under a second on the demo).
Python's import locks make a page that imports the same module meanwhile wait for the thread
rather than import it twice.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence

logger = logging.getLogger(__name__)

# what analysis.query.live_search_for_bundle imports on its first call
LIVE_SEARCH_MODULES: tuple[str, ...] = (
    "analysis.query",
    "tvr.checkpoint",
    "transformers.models.clip.modeling_clip",
)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_report: dict[str, float | str] = {}


def _import_all(modules: Sequence[str]) -> None:
    for name in modules:
        t0 = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:  # a missing optional module must not break the app
            _report[name] = f"failed: {exc}"
            logger.warning("warm-up import of %s failed: %s", name, exc)
        else:
            _report[name] = time.perf_counter() - t0


def start_warm_up(modules: Sequence[str] = LIVE_SEARCH_MODULES) -> threading.Thread:
    """Import ``modules`` in a daemon thread, started once per process; returns that thread
    (calling again returns the same one, started or finished)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_import_all, args=(tuple(modules),),
                                       name="drgi-lab-warm-up", daemon=True)
            _thread.start()
        return _thread


def warm_up_started() -> bool:
    """Whether :func:`start_warm_up` ran in this process."""
    return _thread is not None


def warm_up_report() -> dict[str, float | str]:
    """Seconds each warm-up import took (or why it failed), for the ones done so far."""
    return dict(_report)
