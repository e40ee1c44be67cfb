"""analysis.drgi_report.same_pairs: when the discriminator's two query directions coincide."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from analysis.drgi_report import same_pairs


def _scores(n: int, anchor_text=None, neg=None) -> SimpleNamespace:
    idx = np.arange(n)
    return SimpleNamespace(
        anchor_text=idx if anchor_text is None else np.asarray(anchor_text), anchor_video=idx,
        neg_text_index=(idx + 1) % n, neg_video_index=(idx + 1) % n,
        neg_valid=np.ones(n, dtype=bool), pos_video=np.full(n, 0.6), pos_text=np.full(n, 0.6),
        neg_video=np.array([0.4] * (n - 1) + [np.nan]) if neg is None else np.asarray(neg),
        neg_text=np.full(n, 0.4))


def test_one_caption_per_video_gives_the_same_pairs():
    assert same_pairs(_scores(4), _scores(4))  # NaN where no negative counts as equal


def test_other_anchors_or_scores_or_sizes_differ():
    assert not same_pairs(_scores(4), _scores(4, anchor_text=[0, 2, 4, 6]))
    assert not same_pairs(_scores(4), _scores(4, neg=[0.4, 0.4, 0.5, np.nan]))
    assert not same_pairs(_scores(4), _scores(5))
