"""Showing dataset text safely: captions are data, never markup."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$])")


def escape_md(text: str) -> str:
    """``text`` with Markdown (and ``$`` math) characters backslash-escaped, so it renders
    literally inside ``st.markdown``."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))
