"""Tests for analysis.failures: the failure table, SynthVTT failure types and false negatives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.failures import (
    FAILURE_TYPES,
    classify_failure,
    failure_type_counts,
    failures,
    failures_at,
    synthvtt_failures,
)
from tvr.data.synthvtt import (
    Edit,
    GenerationParams,
    MetaCaption,
    MetaEvent,
    MetaVideo,
    SplitMeta,
    SynthVTTMeta,
    parse_meta,
)


def video(*events, background: str = "black", split: str = "test", family: int = 0,
          video_id: str = "v0") -> MetaVideo:
    """A video whose events take two frames each (geometry as the generator writes it)."""
    evs = tuple(MetaEvent(*e, 2 * i, 2 * i + 2, 0.5, 0.5, 0.1, 0.0, 0.0, 0.0)
                for i, e in enumerate(events))
    return MetaVideo(video_id, split, family, Edit(), background, 2 * len(events), evs)


def caption(events, video_id="v0", background=False, relevant=None, split="test",
            sen_id=0) -> MetaCaption:
    return MetaCaption(sen_id, video_id, split, tuple(events), background,
                       tuple(relevant or [video_id]))


A = ("red", "circle", "moves left")
B = ("blue", "square", "grows")
C = ("green", "triangle", "moves up")
D = ("yellow", "cross", "shrinks")
GT = video(A, B, C)


# ----------------------------------------------------------------------------- failure types
@pytest.mark.parametrize(
    ("mentioned", "top", "expected"),
    [
        # A. the caption's events do not occur in the top-1 video
        ([0, 1], video(A, ("purple", "square", "grows"), C), "colour swap"),
        ([0, 1], video(("red", "square", "moves left"), B), "shape swap"),
        ([0, 2], video(A, B, ("green", "triangle", "moves down")), "direction flip"),
        ([0, 1], video(("red", "circle", "moves right"), B), "direction flip"),
        ([1, 2], video(("blue", "square", "shrinks"), C), "direction flip"),
        ([0, 1], video(("red", "circle", "moves up"), B), "action swap"),
        ([0, 2], video(C, D, A), "order swap"),  # exchanged, with a gap
        ([0, 1, 2], video(C, B, A), "order swap"),  # first and last exchanged
        ([0, 1, 2], video(A, D, C), "missing event"),  # B absent; D is no one-attribute edit
        ([0, 1], video(A, C), "missing event"),
        ([0, 1], video(D, C), "other"),  # nothing of the caption
        ([0], video(D, C), "other"),  # one-event caption with its event absent
        ([0, 1], video(("red", "square", "grows"), D), "other"),  # two differences
    ],
)
def test_caption_level_failure_types(mentioned, top, expected):
    assert classify_failure(caption(mentioned), GT, top) == expected


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        # B. the top-1 video holds the mentioned events (0, 1: A then B) and differs elsewhere
        (video(A, B, C, D), "extra event"),
        (video(D, A, B, C), "extra event"),
        (video(A, B), "missing event"),
        (video(A, B, ("orange", "triangle", "moves up")), "colour swap"),
        (video(A, B, ("green", "circle", "moves up")), "shape swap"),
        (video(A, B, ("green", "triangle", "moves down")), "direction flip"),
        (video(A, B, ("green", "triangle", "grows")), "action swap"),
        (video(C, A, B), "other"),  # a rotation is no single edit
        (video(A, D, B, C, D), "other"),
    ],
)
def test_video_level_failure_types_when_caption_matches(top, expected):
    assert classify_failure(caption([0, 1]), GT, top) == expected


def test_order_swap_at_video_level():
    gt = video(A, B, C)
    top = video(C, B, A)  # matches a caption that mentions B only
    assert classify_failure(caption([1]), gt, top) == "order swap"


def test_substitution_priority_and_background():
    # a colour edit of A (then B) and a shape edit of B (after A) both explain it: colour first
    top = video(("purple", "circle", "moves left"), B, A, ("blue", "circle", "grows"))
    assert classify_failure(caption([0, 1]), GT, top) == "colour swap"
    # caption names the background, the events match, the background does not
    grey = video(A, B, C, background="grey")
    assert classify_failure(caption([0, 1], background=True), GT, grey) == "background swap"
    # background unnamed: the same video truly matches; events equal -> other
    assert classify_failure(caption([0, 1]), GT, grey) == "other"


def test_every_type_is_known():
    assert set(FAILURE_TYPES) >= {"colour swap", "shape swap", "direction flip", "action swap",
                                  "order swap", "missing event", "extra event", "other"}


def test_classify_rejects_a_caption_of_another_video():
    with pytest.raises(ValueError, match=r"caption 0: events \[5\].*'v0'.*3 events"):
        classify_failure(caption([5]), GT, GT)


# ----------------------------------------------------------------------------- failure table
SIM = np.array(
    [
        [0.9, 0.5, 0.95, 0.1],  # GT 0 at rank 2 (video 2 above)
        [0.2, 0.8, 0.8, 0.3],  # GT 1 tied with video 2: rank 2 (ties count against the model)
        [0.6, 0.7, 0.3, 0.2],  # GT 3 at rank 4
        [0.1, 0.2, 0.3, 0.7],  # GT 3 at rank 1
    ],
    dtype=np.float32,
)
T2V = np.array([0, 1, 3, 3])


def test_failures_table_by_hand():
    table = failures(SIM, T2V, k=1, top=3)
    assert table["query"].tolist() == [0, 1, 2]
    assert table["rank"].tolist() == [2, 2, 4]
    assert table["gt_video"].tolist() == [0, 1, 3]
    assert table["top1_video"].tolist() == [2, 2, 1]
    # the tied ground truth (query 1) is listed after the video tied with it, at its rank
    assert table["top_videos"].tolist() == [[2, 0, 1], [2, 1, 3], [1, 0, 2]]
    np.testing.assert_allclose(table["top_scores"][0], [0.95, 0.9, 0.5], atol=1e-6)
    np.testing.assert_allclose(table["margin"], [-0.05, 0.0, -0.5], atol=1e-6)
    np.testing.assert_allclose(table["gt_score"], [0.9, 0.8, 0.2], atol=1e-6)
    # k=2 keeps only the rank-4 query; k=4 none, with the columns still there
    assert failures(SIM, T2V, k=2)["query"].tolist() == [2]
    empty = failures(SIM, T2V, k=4)
    assert len(empty) == 0 and "top_videos" in empty.columns


def test_failures_with_ids_and_bad_input():
    table = failures(SIM, T2V, top=2, query_ids=["q0", "q1", "q2", "q3"],
                     video_ids=["a", "b", "c", "d"])
    assert table["query_id"].tolist() == ["q0", "q1", "q2"]
    assert table["gt_video_id"].tolist() == ["a", "b", "d"]
    assert table["top1_video_id"].tolist() == ["c", "c", "b"]
    assert table["top_video_ids"].tolist() == [["c", "a"], ["c", "b"], ["b", "a"]]
    with pytest.raises(ValueError, match="video_ids"):
        failures(SIM, T2V, video_ids=["a"])
    with pytest.raises(ValueError, match="k=0"):
        failures(SIM, T2V, k=0)
    with pytest.raises(ValueError):
        failures(SIM, np.array([0, 1, 9, 3]))  # GT outside the matrix
    bad = SIM.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError):
        failures(bad, T2V)


def _meta() -> SynthVTTMeta:
    """A valid meta: test videos v0..v3, val video w0, train videos t0, t1 with partial
    captions."""
    videos = [
        video(A, B, C),
        video(A, ("purple", "square", "grows"), C, family=0, video_id="v1"),
        video(C, D, family=1, video_id="v2"),
        video(B, A, family=1, video_id="v3"),
        video(D, A, split="val", family=3, video_id="w0"),
        video(A, B, split="train", family=2, video_id="t0"),
        video(A, B, C, split="train", family=2, video_id="t1"),
    ]
    captions = [
        caption([0, 1], "v0"),
        caption([0, 1], "v1", sen_id=1),
        caption([0, 1], "v2", sen_id=2),
        caption([0, 1], "v3", sen_id=3),
        caption([0, 1], "t0", relevant=["t0", "t1"], split="train", sen_id=4),
        caption([2], "t1", split="train", sen_id=5),
        caption([0], "w0", split="val", sen_id=6),
    ]
    meta = SynthVTTMeta(
        "1.0", GenerationParams(0, 2, 1, 4, 32, 8, False), {v.video_id: v for v in videos},
        {c.sen_id: c for c in captions})
    assert parse_meta(meta.to_json()) == meta  # the hand-built meta has the generator's format
    return meta


def _split(meta: SynthVTTMeta, video_ids: list[str], sen_ids: list[int | None]) -> SplitMeta:
    """The meta aligned with rows ``sen_ids`` (None: a caption without meta) and columns."""
    return SplitMeta(meta.params, {}, [meta.videos[v] for v in video_ids],
                     [None if s is None else meta.captions[s] for s in sen_ids])


def test_synthvtt_failures_types_and_false_negatives():
    meta = _meta()
    ids = ["v0", "v1", "v2", "v3"]
    sim = np.array(
        [
            [0.5, 0.9, 0.1, 0.2],  # v0's caption (A, B) -> v1: colour swap
            [0.1, 0.9, 0.2, 0.3],  # correct
            [0.1, 0.2, 0.3, 0.8],  # v2's caption (C, D) -> v3: other
            [0.7, 0.1, 0.2, 0.6],  # v3's caption (B, A) -> v0 (A, B, C): order swap
        ],
        dtype=np.float32,
    )
    table = synthvtt_failures(sim, np.arange(4), _split(meta, ids, [0, 1, 2, 3]), top=2)
    assert table["query_id"].tolist() == ["0", "2", "3"]
    assert table["gt_video_id"].tolist() == ["v0", "v2", "v3"]
    assert table["failure_type"].tolist() == ["colour swap", "other", "order swap"]
    assert not table["false_negative"].any()
    assert table["false_negatives_top"].tolist() == [[], [], []]
    counts = failure_type_counts(table)
    assert counts.index.tolist() == list(FAILURE_TYPES)
    assert counts["colour swap"] == 1 and counts["order swap"] == 1 and counts.sum() == 3

    # train captions are partial: t0's caption (A, B) truly matches t1 (A, B, C)
    t2v = np.array([0, 1])
    train_sim = np.array([[0.2, 0.9], [0.1, 0.8]], dtype=np.float32)
    table = synthvtt_failures(train_sim, t2v, _split(meta, ["t0", "t1"], [4, 5]))
    assert table["query_id"].tolist() == ["4"]
    assert table["false_negative"].tolist() == [True]
    assert table["failure_type"].tolist() == ["extra event"]
    assert table["false_negatives_top"].tolist() == [["t1"]]


def test_synthvtt_failures_checks_the_split_meta():
    meta = _meta()
    ids = ["v0", "v1", "v2", "v3"]
    sim = np.eye(4, dtype=np.float32)[::-1].copy()
    with pytest.raises(ValueError, match="split meta and text_to_video disagree"):
        synthvtt_failures(sim, np.arange(4), _split(meta, ids, [1, 0, 2, 3]))
    with pytest.raises(ValueError, match=r"caption rows \[0\] have no entry"):
        synthvtt_failures(sim, np.arange(4), _split(meta, ids, [None, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"3 captions x 4 videos .* \(4, 4\)"):
        synthvtt_failures(sim, np.arange(4), _split(meta, ids, [0, 1, 2]))
    with pytest.raises(ValueError, match="failure_type"):
        failure_type_counts(pd.DataFrame({"query": [0]}))


def test_synthvtt_failures_name_a_caption_whose_events_do_not_fit_its_video():
    meta = _meta()
    ids = ["v0", "v1", "v2", "v3"]
    split = _split(meta, ids, [0, 1, 2, 3])
    # v2 has two events: a caption of it naming a third does not fit (a hand-made split;
    # the meta file's reader refuses it)
    split.captions[2] = caption([0, 2], "v2", sen_id=2)
    sim = np.eye(4, dtype=np.float32)[::-1].copy()  # every caption fails
    with pytest.raises(ValueError, match=r"caption 2: events \[0, 2\] .* 'v2''s 2 events"):
        synthvtt_failures(sim, np.arange(4), split)


def test_top_videos_are_a_partial_selection_with_the_whole_sort_order():
    """The failing queries' top videos come from each caption's ranked negatives (a partial
    selection; a lexsort of every row took ~12 s per bundle at 59,800 x 2,990), in the sort's
    order: score descending, ties by lower column, the ground truth after the columns tied
    with it."""
    from analysis.ranked_negatives import ranked_negatives

    rng = np.random.default_rng(0)
    block = rng.integers(0, 6, size=(300, 40)).astype(np.float32) / 4  # many ties
    gt = rng.integers(0, 40, size=300)
    cols = np.arange(40)
    rows = np.arange(300)
    for n in (1, 5, 39, 40):
        got, scores = ranked_negatives(block, gt, n).top_videos(rows, n)
        for r in range(300):
            want = sorted(cols, key=lambda c, r=r: (-block[r, c], c == gt[r], c))[:n]
            assert got[r].tolist() == want
            assert scores[r].tolist() == block[r, want].tolist()
    # the ground truth sits at position rank (1 + columns scoring at least as high)
    table = failures(block, gt, k=1, top=40)
    for q, rank, top in zip(table["query"], table["rank"], table["top_videos"], strict=True):
        assert top[rank - 1] == gt[q]


def test_failures_at_a_higher_threshold_filter_the_lower_table():
    rng = np.random.default_rng(4)
    sim = (rng.integers(0, 5, size=(60, 12)) / 4).astype(np.float32)  # ties
    t2v = rng.integers(0, 12, 60)
    low = failures(sim, t2v, k=1, top=4, video_ids=[f"v{i}" for i in range(12)])
    low.attrs["note"] = "kept"
    for k in (1, 2, 5, 11):
        got = failures_at(low, k)
        want = failures(sim, t2v, k=k, top=4, video_ids=[f"v{i}" for i in range(12)])
        pd.testing.assert_frame_equal(got, want)
        assert got.attrs == {"note": "kept"}
    with pytest.raises(ValueError, match="k=0"):
        failures_at(low, 0)
