"""Tests for analysis.attention: entropy, self-loops, baseline, event alignment, node labels."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.attention import (
    clean_token,
    event_alignment,
    label_nodes,
    normalised_entropy,
    self_loop_share,
    uniform_baseline,
)

MASK = np.array([1, 1, 1, 0])  # 3 valid nodes, 1 padded


def test_uniform_baseline_and_its_statistics():
    base = uniform_baseline(MASK)
    assert base.dtype == np.float32 and base.shape == (4, 4)
    np.testing.assert_allclose(base[:3, :3], 1 / 3)
    assert not base[3].any() and not base[:, 3].any()
    entropy = normalised_entropy(base, MASK)
    np.testing.assert_allclose(entropy[:3], 1.0)
    assert np.isnan(entropy[3])
    np.testing.assert_allclose(self_loop_share(base, MASK)[:3], 1 / 3)


def test_one_hot_attention():
    identity = np.eye(4)
    np.testing.assert_allclose(normalised_entropy(identity, MASK)[:3], 0.0)
    np.testing.assert_allclose(self_loop_share(identity, MASK)[:3], 1.0)
    # one-hot on another node: entropy 0, self-loop share 0
    shifted = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    np.testing.assert_allclose(normalised_entropy(shifted, MASK)[:3], 0.0)
    np.testing.assert_allclose(self_loop_share(shifted, MASK)[:3], 0.0)


def test_entropy_known_value_and_renormalisation():
    mask = np.ones(4)
    attn = np.full((4, 4), 0.25)
    attn[0] = [0.5, 0.5, 0.0, 0.0]  # log 2 / log 4
    np.testing.assert_allclose(normalised_entropy(attn, mask), [0.5, 1, 1, 1])
    np.testing.assert_allclose(self_loop_share(attn, mask), [0.5, 0.25, 0.25, 0.25])
    # mass leaked onto the padded node is dropped and the valid part renormalised
    leaky = np.array([[0.4, 0.4, 0.0, 0.2], [0.3, 0.3, 0.3, 0.1], [0, 0, 0.9, 0.1], [0, 0, 0, 1]])
    share = self_loop_share(leaky, MASK)
    np.testing.assert_allclose(share[:3], [0.5, 1 / 3, 1.0])
    np.testing.assert_allclose(normalised_entropy(leaky, MASK)[:2], [np.log(2) / np.log(3), 1.0])


def test_single_valid_node_and_errors():
    one = np.array([1, 0])
    attn = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert np.isnan(normalised_entropy(attn, one)).all()
    assert self_loop_share(attn, one)[0] == 1.0
    with pytest.raises(ValueError, match="negative weight"):
        normalised_entropy(np.array([[1.0, -0.5], [0.5, 0.5]]), [1, 1])
    with pytest.raises(ValueError, match="expected a square"):
        self_loop_share(np.ones((2, 3)), [1, 1])
    with pytest.raises(ValueError, match="mask: expected 2 entries"):
        self_loop_share(np.eye(2), [1, 1, 1])
    with pytest.raises(ValueError, match="row of valid node 1 has no mass"):
        normalised_entropy(np.array([[1.0, 0.0], [0.0, 0.0]]), [1, 1])
    with pytest.raises(ValueError, match="mask has no valid node"):
        normalised_entropy(np.eye(2), [0, 0])


def test_event_alignment_by_hand():
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    events = np.array([0, 0, 1, -1])  # the last frame is a gap
    assert event_alignment(weights, events, [1]) == pytest.approx(0.3)
    assert event_alignment(weights, events, {0, 1}) == pytest.approx(0.6)
    assert event_alignment(weights * 10, events, [1]) == pytest.approx(0.3)  # unnormalised
    assert event_alignment(np.ones(4), events, [0]) == pytest.approx(0.5)  # chance level
    assert event_alignment(weights, events, [2]) == 0.0


def test_event_alignment_errors():
    with pytest.raises(ValueError, match="apply a softmax"):
        event_alignment([0.5, -0.1], [0, 1], [0])
    with pytest.raises(ValueError, match=r"frame_event_ids: expected shape \(2,\)"):
        event_alignment([0.5, 0.5], [0, 1, 1], [0])
    with pytest.raises(ValueError, match="mentioned_event_ids is empty"):
        event_alignment([0.5, 0.5], [0, 1], [])
    with pytest.raises(ValueError, match="total attention mass is 0"):
        event_alignment([0.0, 0.0], [0, 1], [0])
    with pytest.raises(ValueError, match="integer event ids"):
        event_alignment([0.5, 0.5], [0.0, 1.0], [0])


def test_label_nodes_text():
    tokens = [
        "<|startoftext|>",
        "red</w>",
        "circle</w>",
        "then</w>",
        "red</w>",
        "<|endoftext|>",
        "!",
    ]
    mask = [1, 1, 1, 1, 1, 1, 0]
    labels = label_nodes("text", mask, tokens=tokens)
    assert labels == ["[SOT]", "red", "circle", "then", "red (2)", "[EOT]"]
    assert label_nodes("text", mask, tokens=tokens, unique=False)[4] == "red"
    assert label_nodes("text", mask, tokens=tokens[:6]) == labels  # one per valid node
    assert label_nodes("text", [1, 0, 1]) == ["w0", "w2"]
    assert clean_token("circle</w>") == "circle"
    # a generated suffix never collides with a real token
    assert len(set(label_nodes("text", [1, 1, 1], tokens=["a", "a", "a (2)"]))) == 3


def test_label_nodes_video():
    mask = np.array([1, 1, 1, 1, 0])
    times = [0.0, 0.42, 0.83, 1.25, 0.0]
    assert label_nodes("video", mask, timestamps=times)[3] == "f3 @ 1.25s"
    assert label_nodes("video", mask) == ["f0", "f1", "f2", "f3"]
    with pytest.raises(ValueError, match=r"timestamps: expected 5 entries .* or 4 .* got 2"):
        label_nodes("video", mask, timestamps=[0.0, 1.0])
    with pytest.raises(ValueError, match="kind='audio'"):
        label_nodes("audio", mask)
    with pytest.raises(ValueError, match="timestamps apply to video nodes"):
        label_nodes("text", mask, timestamps=times)
