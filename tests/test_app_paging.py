"""The page arithmetic of app/components/paging.py (the page control itself: test_app_queries)."""

from __future__ import annotations

import pytest

from app.components.paging import page_count, page_of, page_span


def test_page_count_rounds_up_and_an_empty_table_has_one_page():
    assert page_count(59_800, 500) == 120
    assert page_count(60_000, 500) == 120 and page_count(60_001, 500) == 121
    assert page_count(500, 500) == 1 and page_count(1, 500) == 1 and page_count(0, 500) == 1
    with pytest.raises(ValueError, match="rows per page must be >= 1, got 0"):
        page_count(10, 0)


def test_page_span_is_the_page_rows_clamped_to_the_pages():
    assert page_span(1, 8, 3) == (0, 3)
    assert page_span(3, 8, 3) == (6, 8)  # the last page is short
    assert page_span(9, 8, 3) == (6, 8) and page_span(0, 8, 3) == (0, 3)
    assert page_span(1, 0, 3) == (0, 0)
    assert page_span(2, 59_800, 500) == (500, 1000)


def test_page_of_finds_the_query_by_id_not_position():
    ids = [7, 3, 9, 1, 4]
    assert page_of(ids, 7, 2) == 1 and page_of(ids, 1, 2) == 2 and page_of(ids, 4, 2) == 3
    assert page_of(ids, 5, 2) is None and page_of(ids, None, 2) is None
