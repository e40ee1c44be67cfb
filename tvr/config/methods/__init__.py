"""The built-in heads' and objectives' config sections and traits, one module per method
(:mod:`tvr.config.traits`). Importing this package imports each of its modules, which registers
them; none imports torch, so loading and checking a config does not either.

A method's code (``tvr/models/heads/<name>.py``, ``tvr/objectives/<name>.py``) registers its
class; its settings and traits live here, under the same name.
"""

from __future__ import annotations

import importlib
import pkgutil

# Every module of this package registers its method (no list to keep up to date).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
