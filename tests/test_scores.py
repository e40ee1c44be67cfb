"""Tests for analysis.scores: margin and discriminator summaries."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.scores import discriminator_summary, margin_summary


def test_margin_summary_known_values():
    s = margin_summary([-0.2, 0.0, 0.1, 0.3])
    assert s.n == 4
    assert s.mean == pytest.approx(0.05) and s.median == pytest.approx(0.05)
    assert s.negative_share == pytest.approx(0.25) and s.tie_share == pytest.approx(0.25)
    with pytest.raises(ValueError, match="empty"):
        margin_summary([])
    with pytest.raises(ValueError, match="finite"):
        margin_summary([np.nan])


def test_discriminator_summary_drops_queries_without_negative():
    s = discriminator_summary([0.9, 0.6, 0.7, 0.8], [0.1, 0.7, np.nan, 0.2],
                              valid=[True, True, True, False])
    assert s.n == 2  # query 2 has no negative score, query 3 is marked invalid
    assert s.pos_mean == pytest.approx(0.75) and s.neg_mean == pytest.approx(0.4)
    assert s.separated_share == pytest.approx(0.5) and s.gap == pytest.approx(0.35)
    np.testing.assert_allclose(s.pos, [0.9, 0.6])
    empty = discriminator_summary([0.5], [np.nan])
    assert empty.n == 0 and np.isnan(empty.pos_mean)
    with pytest.raises(ValueError, match="same shape"):
        discriminator_summary([0.1, 0.2], [0.1])
