"""A pickle reader that loads plain data only (dicts, lists, strings, numbers), never code.

Some benchmark annotations ship as pickles (MSVD's ``raw-captions.pkl``). An ordinary
``pickle.load`` can import and call any global, so a crafted file runs code on load. The
:class:`PlainDataUnpickler` refuses every global: only the built-in containers and scalars that
the pickle protocol encodes without a global can come out of it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError


class PlainDataUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose :meth:`find_class` refuses every global.

    Dicts, lists, tuples, strings, numbers, booleans and ``None`` load (and, from protocol 3
    or 4 on, bytes and sets, which older protocols encode through a global); any class,
    function or reduce call (``os.system``, ``builtins.eval``, numpy arrays, ...) raises
    ``pickle.UnpicklingError`` naming the refused global.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refused to load global {module}.{name}: only plain data (dict, list, str, "
            "numbers) may be unpickled"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(
            f"refused persistent id {pid!r}: only plain data may be unpickled"
        )


def load_plain_pickle(path: Path) -> Any:
    """Load a pickle holding only plain data.

    Python 2 pickles are read with byte strings decoded as UTF-8.

    Raises:
        SourceError: naming the file when it is missing, is not a valid pickle, or references
            any global (class, function) -- the message names the refused global.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(path, "", "pickle file not found")
    with path.open("rb") as fh:
        try:
            return PlainDataUnpickler(fh, encoding="utf-8").load()
        except pickle.UnpicklingError as exc:
            raise SourceError(path, "", f"unsafe or invalid pickle: {exc}") from None
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            raise SourceError(
                path, "", f"not a valid pickle ({type(exc).__name__}: {exc})"
            ) from None
