"""Tests for analysis.query.LiveSearch on tiny runs trained in-process (seqTransf, WTI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.projection import PointPlacer
from analysis.query import CONTRIBUTION, EMPTY_QUERY, WORD_RELEVANCE, LiveSearch
from tests.conftest import tiny_overrides
from tvr.checkpoint import load_pretrained
from tvr.config import load_config
from tvr.data.sources import load_split
from tvr.evaluate import EmbedOptions, SplitEmbedding, embed_split
from tvr.metrics import t2v_ranks
from tvr.models.features import TokenFeatures
from tvr.train import train

HEADS = ("seqtransf", "wti")  # one factorized head, one token-wise head


@dataclass
class Run:
    model: torch.nn.Module
    tokenizer: object
    max_words: int
    emb: SplitEmbedding


@pytest.fixture(scope="module")
def runs(tiny_synthvtt: Path, tmp_path_factory) -> dict[str, Run]:
    out = tmp_path_factory.mktemp("query_runs")
    records = load_split("synthvtt", tiny_synthvtt, "test")
    result = {}
    for head in HEADS:
        cfg = load_config(None, tiny_overrides(tiny_synthvtt, out, f"q-{head}", f"model.head={head}",
                                               "train.epochs=1", "train.eval_after=false"))
        run_dir = train(cfg, progress=False)
        model, tok, cfg = load_pretrained(run_dir)
        opts = EmbedOptions(num_frames=cfg.data.num_frames, image_size=cfg.data.image_size,
                            max_words=cfg.data.max_words, progress=False)
        emb = embed_split(model, tok, records, opts)
        result[head] = Run(model, tok, cfg.data.max_words, emb)
    return result


def live(run: Run, **kwargs) -> LiveSearch:
    return LiveSearch(run.model, run.tokenizer, run.emb.video, run.emb.video_ids,
                      max_words=run.max_words, **kwargs)


def gt_rank(scores: np.ndarray, indices: np.ndarray, gt: int) -> int:
    """Project rank (1 + #others scoring at least the ground truth) from a full live result."""
    gt_score = scores[list(indices).index(gt)]
    return int((scores >= gt_score).sum())  # the ground truth itself is one of them


@pytest.mark.parametrize("head", HEADS)
def test_live_ranks_equal_full_similarity(runs, head):
    run = runs[head]
    emb = run.emb
    n_videos = len(emb.video_ids)
    search = live(run, shortlist=n_videos)
    expected_ranks = t2v_ranks(emb.sim, emb.text_to_video)
    for i, caption in enumerate(emb.captions):
        res = search.search(caption, k=n_videos)
        assert res.ok and res.path == search.path(n_videos)
        assert sorted(res.indices.tolist()) == list(range(n_videos))
        assert res.video_ids == [emb.video_ids[j] for j in res.indices]
        np.testing.assert_allclose(res.scores, emb.sim[i, res.indices], atol=1e-5)
        assert (np.diff(res.scores) <= 0).all()
        assert gt_rank(res.scores, res.indices, int(emb.text_to_video[i])) == expected_ranks[i]
    expected_path = "exhaustive" if head == "wti" else "factorized"
    assert search.path(n_videos) == expected_path
    assert res.n_scored == n_videos and res.n_videos == n_videos


def test_wti_shortlist_path_reranks_with_head_score(runs):
    run = runs["wti"]
    emb = run.emb
    search = live(run, shortlist=3)
    assert search.coarse_kind == "token_mean"
    for i, caption in enumerate(emb.captions):
        res = search.search(caption, k=2)
        assert res.path == "shortlist" and res.n_scored == 3
        assert "re-ranked with the WTIHead score" in res.path_detail
        np.testing.assert_allclose(res.scores, emb.sim[i, res.indices], atol=1e-5)
        # the hits are the best two of the coarse top-3 by the head's own score
        text = search.encode_query(caption)
        coarse = search._matrix @ (text.weights[0, :, None] * text.tokens[0]).sum(0)
        short = torch.topk(coarse, 3).indices.numpy()
        assert set(res.indices) <= set(short)
        best = short[np.argsort(-emb.sim[i, short], kind="stable")][:2]
        np.testing.assert_allclose(emb.sim[i, res.indices], emb.sim[i, best], atol=1e-5)
    # k beyond the shortlist widens it, so k hits always come back
    wide = search.search(emb.captions[0], k=5)
    assert len(wide.indices) == 5 and wide.n_scored == 5
    pooled = live(run, shortlist=3, coarse="pooled")
    assert pooled.coarse_kind == "pooled" and "pooled vectors" in pooled.describe()


def test_word_scores(runs):
    caption = runs["wti"].emb.captions[0]
    for head in HEADS:
        res = live(runs[head]).search(caption, k=3)
        assert res.tokens[0] == "<sot>" and res.tokens[-1] == "<eot>"
        assert res.word_scores.shape == (3, len(res.tokens))
        assert np.isfinite(res.word_scores).all()
        if head == "wti":
            assert res.word_score_kind == CONTRIBUTION and "WTI contribution" in res.word_score_note
        else:
            assert res.word_score_kind == WORD_RELEVANCE and "NOT part" in res.word_score_note
            assert (np.abs(res.word_scores) <= 1 + 1e-5).all()
    # WTI: contributions are the t2v half; with the frames' v2t half they give the score
    run = runs["wti"]
    search = live(run)
    res = search.search(caption, k=3)
    text = search.encode_query(caption)
    head = run.model.head
    for row, v in enumerate(res.indices):
        vid = run.emb.video[[int(v)]]
        v2t = float(head.frame_contributions(text, vid).sum())
        t2v = float(res.word_scores[row].sum())
        assert (t2v + v2t) / 2 == pytest.approx(float(res.scores[row]), abs=1e-5)


@pytest.mark.parametrize("query", ["", "   ", " \n\t "])
def test_empty_query_gives_an_error_and_no_search(runs, query):
    search = live(runs["seqtransf"])
    res = search.search(query)
    assert not res.ok and res.error == EMPTY_QUERY and res.path == "none"
    assert len(res.indices) == 0 and res.video_ids == [] and res.total_ms == 0.0
    with pytest.raises(ValueError, match="Empty query"):
        search.encode_query(query)


def test_messages_long_and_unknown_words(runs):
    run = runs["seqtransf"]
    search = live(run)
    long = " ".join(["a red circle moves left then a blue square grows"] * 3)
    res = search.search(long, k=2)
    assert res.ok and res.truncated and len(res.indices) == 2
    assert any("max_words=16" in m and "the rest was ignored" in m for m in res.messages)
    assert len(res.tokens) == run.max_words

    res = search.search("a zebra circle moves left")
    assert res.unknown_words == ["zebra"] and not res.truncated
    assert any("never seen in training: zebra" in m for m in res.messages)
    res = search.search("zebra giraffe")
    assert any(m.startswith("None of the query's words") for m in res.messages)

    res = search.search("a red circle", k=50)
    assert len(res.indices) == len(run.emb.video_ids)
    assert any("only 8 videos" in m for m in res.messages)
    clean = search.search("a red circle moves left", k=3)
    assert clean.messages == [] and clean.unknown_words == [] and not clean.truncated


def test_emoji_and_unknown_letters_are_dropped_and_reported(runs):
    run = runs["seqtransf"]
    search = live(run)
    res = search.search("a red 🐱 circle moves left", k=3)
    plain = search.search("a red circle moves left", k=3)
    assert res.ok and res.unknown_words == ["🐱"] and res.unrepresentable_words == ["🐱"]
    assert res.unknown_characters == ["🐱"]
    assert res.tokens == plain.tokens  # nothing of the emoji reaches the model
    np.testing.assert_allclose(res.scores, plain.scores, atol=1e-6)
    assert any("cannot represent were left out of the query: 🐱" in m for m in res.messages)
    assert "“🐱”" in res.unknown_warning and "carry no learned meaning" not in res.unknown_warning
    assert plain.unknown_warning is None

    res = search.search("a red 🐱 zebra cafés", k=3)
    assert res.unknown_words == ["🐱", "zebra", "cafés"]
    assert res.unrepresentable_words == ["🐱", "cafés"] and res.unknown_characters == ["🐱", "é"]
    for word in ("“🐱”", "“zebra”", "“cafés”"):
        assert word in res.unknown_warning
    assert any("never seen in training: zebra." in m for m in res.messages)

    only = search.search("🐱 🐶", k=3)
    assert not only.ok and "🐱" in only.error and "🐶" in only.error
    assert only.unknown_words == ["🐱", "🐶"]


def test_latency_fields(runs):
    for head in HEADS:
        res = live(runs[head]).search("a red circle moves left", k=3)
        assert res.encode_ms > 0 and res.score_ms > 0 and res.explain_ms >= 0
        assert res.total_ms == pytest.approx(res.encode_ms + res.score_ms + res.explain_ms)


def test_encode_query_places_on_a_map(runs):
    run = runs["seqtransf"]
    search = live(run)
    text = search.encode_query("a red circle moves left")
    assert isinstance(text, TokenFeatures) and text.pooled.shape == (1, 16)
    x = run.emb.video.pooled.numpy()
    placer = PointPlacer(x, x[:, :2], k=3)
    assert placer.place(text.pooled.numpy()).shape == (1, 2)


def test_float16_gallery_tokens(runs):
    run = runs["wti"]
    half = run.emb.video.map(lambda t: t.half() if t.is_floating_point() else t)
    search = LiveSearch(run.model, run.tokenizer, half, run.emb.video_ids,
                        max_words=run.max_words, shortlist=100)
    res = search.search(run.emb.captions[1], k=3)
    np.testing.assert_allclose(res.scores, run.emb.sim[1, res.indices], atol=2e-3)


def test_bad_construction(runs):
    run = runs["wti"]
    emb = run.emb
    with pytest.raises(ValueError, match="video_ids: 2 ids for 8"):
        LiveSearch(run.model, run.tokenizer, emb.video, emb.video_ids[:2], max_words=16)
    no_weights = TokenFeatures(emb.video.tokens, emb.video.mask, emb.video.pooled)
    with pytest.raises(ValueError, match="token weights"):
        LiveSearch(run.model, run.tokenizer, no_weights, emb.video_ids, max_words=16)
    with pytest.raises(ValueError, match="shortlist=0"):
        LiveSearch(run.model, run.tokenizer, emb.video, emb.video_ids, max_words=16, shortlist=0)
    with pytest.raises(ValueError, match="coarse='nope'"):
        LiveSearch(run.model, run.tokenizer, emb.video, emb.video_ids, max_words=16,
                   coarse="nope")
    bad = emb.video.pooled.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"row 3 \('video"):
        LiveSearch(run.model, run.tokenizer,
                   TokenFeatures(emb.video.tokens, emb.video.mask, bad, emb.video.weights),
                   emb.video_ids, max_words=16)
    search = live(run)
    with pytest.raises(ValueError, match="k=0"):
        search.search("a red circle", k=0)
    with pytest.raises(TypeError, match="expected str"):
        search.search(None)  # type: ignore[arg-type]
    run.model.train()
    try:
        with pytest.raises(ValueError, match="training mode"):
            live(run)
    finally:
        run.model.eval()
