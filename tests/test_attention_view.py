"""Tests for analysis.attention_view: head views, attention received, edges, layout."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.attention import normalised_entropy
from analysis.attention_view import (
    attention_edges,
    attention_view,
    circle_layout,
    received_attention,
    received_attention_stack,
)

MASK = np.array([1, 1, 1, 0], dtype=bool)
HEAD0 = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.2, 0.2, 0.6, 0.0],
                  [0.0, 0.0, 0.0, 0.0]])
HEAD1 = np.array([[0.0, 0.0, 0.8, 0.2], [1 / 3, 1 / 3, 1 / 3, 0.0], [0.0, 0.0, 1.0, 0.0],
                  [0.0, 0.0, 0.0, 0.0]])  # row 0 leaks 0.2 onto the padded node
ATTN = np.stack([HEAD0, HEAD1])  # [H=2, N=4, N=4]


def test_one_head_and_the_head_mean():
    v0 = attention_view(ATTN, MASK, head=0)
    np.testing.assert_allclose(v0, HEAD0[:3, :3])
    v1 = attention_view(ATTN, MASK, head=1)
    np.testing.assert_allclose(v1[0], [0, 0, 1])  # leaked mass renormalised away
    mean = attention_view(ATTN, MASK)
    np.testing.assert_allclose(mean, (v0 + v1) / 2)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0)
    # statistics of analysis.attention apply with an all-valid mask
    np.testing.assert_allclose(normalised_entropy(v0, np.ones(3)),
                               normalised_entropy(HEAD0, MASK)[:3])
    single = attention_view(HEAD0, MASK)  # a lone [N, N] map is one head
    np.testing.assert_allclose(single, v0)


def test_minus_uniform_and_received():
    excess = attention_view(ATTN, MASK, 0, minus_uniform=True)
    np.testing.assert_allclose(excess, HEAD0[:3, :3] - 1 / 3)
    np.testing.assert_allclose(excess.sum(axis=1), 0.0, atol=1e-12)
    got = received_attention(ATTN, MASK, head=0)
    np.testing.assert_allclose(got, [0.7 / 3, 1.7 / 3, 0.6 / 3, 0.0])
    assert got.sum() == pytest.approx(1.0)
    stack = received_attention_stack(ATTN[None].repeat(2, 0), np.stack([MASK, MASK]))
    np.testing.assert_allclose(stack[1], received_attention(ATTN, MASK))


def test_edges_sorted_thresholded_without_self_loops():
    view = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5], [0.2, 0.2, 0.6]])
    e = attention_edges(view, min_weight=1 / 3)
    assert list(zip(e.source.tolist(), e.target.tolist(), strict=True)) == [
        (0, 1), (1, 0), (1, 2)]
    np.testing.assert_allclose(e.weight, [0.6, 0.5, 0.5])
    loops = attention_edges(view, min_weight=0.55, self_loops=True)
    assert sorted(zip(loops.source.tolist(), loops.target.tolist(), strict=True)) == [
        (0, 1), (2, 2)]
    assert len(attention_edges(view, top=2)) == 2


def test_circle_layout():
    pos = circle_layout(4)
    np.testing.assert_allclose(pos, [[0, 1], [1, 0], [0, -1], [-1, 0]], atol=1e-12)
    assert circle_layout(0).shape == (0, 2)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[H, N, N\]"):
        attention_view(np.ones((2, 3)), [1, 1])
    with pytest.raises(ValueError, match="mask"):
        attention_view(ATTN, [1, 1, 1])
    with pytest.raises(ValueError, match="head=2"):
        attention_view(ATTN, MASK, head=2)
    with pytest.raises(ValueError, match="no valid node"):
        attention_view(ATTN, np.zeros(4))
    with pytest.raises(ValueError, match="no attention mass"):
        attention_view(np.zeros((4, 4)), MASK)
