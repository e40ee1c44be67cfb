"""DRGI Lab, the Streamlit app: ``python -m app`` (binds 127.0.0.1 from any folder; see
:mod:`app.__main__`), or ``streamlit run app/main.py`` from the repository root.

Reads runs and their analysis bundles under ``DRGI_LAB_CHECKPOINTS`` (default
``checkpoints/``) and datasets under ``DRGI_LAB_DATA`` (default ``data/``); nothing else. The
sidebar picks the base run, the DRGI run and the dataset split (bound to the URL), then the
selected page runs. Pages get the selection from :func:`app.context.current`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import streamlit as st

APP_DIR = Path(__file__).resolve().parent
if str(APP_DIR.parent) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path
    sys.path.insert(0, str(APP_DIR.parent))

from app.warmup import script_turn, start_warm_up  # noqa: E402  (imports no Streamlit)

with script_turn():  # never import beside the launcher's warm-up thread (app/warmup.py)
    from app.components.drill import apply_pending
    from app.components.sidebar import render_sidebar
    from app.context import set_current
    from app.pages import PAGES
    from app.selection import Selection
    from app.state import AppRoots
    from app.urlstate import attach_link, start_page

logger = logging.getLogger(__name__)

# Shipped with the app: a material-icon page_icon makes every page fetch its favicon from
# fonts.gstatic.com, and the app makes no request to any host but its own.
FAVICON = APP_DIR / "assets" / "favicon.svg"

__all__ = ["PAGES", "build_pages", "main"]


def build_pages() -> list[st.Page]:
    """The ``st.Page`` objects of :data:`PAGES` (file pages, so AppTest can switch to them)."""
    pages = []
    for i, (file, title, icon, url_path) in enumerate(PAGES):
        path = APP_DIR / file
        if not path.is_file():
            logger.error("page file %s is missing; the page is left out", path)
            continue
        pages.append(st.Page(path, title=title, icon=icon, url_path=url_path, default=i == 0))
    return pages


def main() -> None:
    start_warm_up()  # the launcher's warm-up, else the live search's imports (app/warmup.py)
    if not FAVICON.is_file():
        logger.error("favicon %s is missing; the app shows Streamlit's own", FAVICON)
    st.set_page_config(page_title="DRGI Lab", layout="wide",
                       page_icon=str(FAVICON) if FAVICON.is_file() else None)
    pg = st.navigation(build_pages(), position="sidebar")
    st.sidebar.title("DRGI Lab")
    apply_pending()  # page settings left by a drill-down from another page
    start_page(pg.url_path)
    selection = render_sidebar(AppRoots.from_env(), notices=st.container())
    set_current(selection)
    attach_link(st.sidebar.empty())  # every bound widget of the page writes itself into it
    try:
        pg.run()
    finally:  # st.stop and st.rerun end a run by raising
        if isinstance(selection, Selection):
            # a page's first visit may scan a whole [Nt, Nv] similarity (715 MB at MSR-VTT
            # full size): keep none of it mapped between reruns (it stays in the page cache)
            for _, bundle in selection.bundles():
                bundle.release_mapped_pages()


if __name__ == "__main__":  # streamlit runs this file as __main__; tests import PAGES
    with script_turn():
        main()
