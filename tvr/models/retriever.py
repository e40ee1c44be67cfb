"""Old home of :class:`tvr.retriever.Retriever`, kept for scripts that import it from here.

The retriever sits above ``tvr.models`` and ``tvr.objectives`` (it joins both), so it lives in
``tvr/retriever.py``; the lazy alias keeps ``tvr.models`` free of an import of
``tvr.objectives``.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Retriever":
        from tvr.retriever import Retriever

        return Retriever
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
