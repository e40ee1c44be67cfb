"""Tests for analysis.siblings: win rates over one-edit siblings, read from the typed meta."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.siblings import sibling_outrank
from tvr.data.synthvtt import read_meta


def _split(root: Path, split: str = "train") -> tuple[list[str], dict]:
    meta = read_meta(root)
    ids = [vid for vid, v in meta.videos.items() if v.split == split]
    return ids, meta.videos


def _expected_pairs(ids: list[str], videos) -> dict[str, int]:
    """Naive count: every (query video, sibling) pair one edit apart, by the sibling's kind."""
    counts: dict[str, int] = {}
    for g in ids:
        for s in ids:
            if s == g or videos[s].family != videos[g].family:
                continue
            kinds = {videos[g].edit.type, videos[s].edit.type}
            if "none" not in kinds:
                continue
            (kind,) = kinds - {"none"} or {"none"}
            for key in (kind, "all"):
                counts[key] = counts.get(key, 0) + 1
    return counts


def test_pairs_and_wins_from_typed_meta(tiny_synthvtt: Path) -> None:
    ids, videos = _split(tiny_synthvtt)
    n = len(ids)
    t2v = np.arange(n)  # one query per video
    expected = _expected_pairs(ids, videos)
    assert expected.get("all", 0) > 0  # the tiny set has families
    # The true video scores highest: every pair is a win.
    best = sibling_outrank(np.eye(n), t2v, ids, videos)
    assert {k: v["pairs"] for k, v in best.items()} == expected
    assert all(v["wins"] == v["pairs"] and v["rate"] == 1.0 for v in best.values())
    # All scores equal: ties lose, so no pair is a win.
    flat = sibling_outrank(np.zeros((n, n)), t2v, ids, videos)
    assert all(v["wins"] == 0 and v["rate"] == 0.0 for v in flat.values())


def test_unknown_video_is_named(tiny_synthvtt: Path) -> None:
    ids, videos = _split(tiny_synthvtt)
    with pytest.raises(KeyError, match="nope"):
        sibling_outrank(np.zeros((1, 2)), [0], [ids[0], "nope"], videos)
