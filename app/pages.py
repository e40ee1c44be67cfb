"""The app's pages: ``(file relative to app/, title, icon, url_path)``, the first one the
default. Kept apart from :mod:`app.main` (which re-exports it) so that reading the list imports
no Streamlit (the launcher's warm-up reads it before the server starts)."""

from __future__ import annotations

PAGES: list[tuple[str, str, str, str]] = [
    ("app_pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    ("app_pages/queries.py", "Queries", ":material/table_rows:", "queries"),
    ("app_pages/compare.py", "Compare rankings", ":material/compare_arrows:", "compare"),
    ("app_pages/failures.py", "Failures", ":material/error:", "failures"),
    ("app_pages/attention.py", "Attention graphs", ":material/hub:", "attention"),
    ("app_pages/embeddings.py", "Embeddings", ":material/scatter_plot:", "embeddings"),
    ("app_pages/hard_negatives.py", "Hard negatives", ":material/balance:", "hard-negatives"),
    ("app_pages/live_query.py", "Live query", ":material/search:", "live-query"),
]
