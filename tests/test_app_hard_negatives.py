"""The hard-negatives page (app/app_pages/hard_negatives.py) with AppTest on the tiny run
pair: margins are :func:`analysis.hard_negatives.margin_distribution`, hubness and the
DRGI information test are the bundles' values.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.hard_negatives import hard_negatives, hubness, hubness_summary, margin_distribution
from analysis.scores import margin_summary
from tests.helpers_app import (
    assert_histogram_of,
    assert_no_errors,
    chart,
    open_page,
    page_bundle,
    plotly_array,
    split_meta,
    table_with,
)

HARD_NEGATIVES = "app_pages/hard_negatives.py"


def test_hard_negatives_match_analysis(app_env):
    base, drgi = page_bundle(app_env, app_env.base), page_bundle(app_env, app_env.drgi)
    q = 4
    at = open_page(HARD_NEGATIVES, q=str(q))
    assert at.number_input(key="q").value == q
    table = table_with(at, "run", "queries", "median", "beaten (%)")
    hist = {t["name"].split(":")[0]: t for t in chart(at, "hn_margins")["data"]}
    for row, bundle, label in ((0, base, "base"), (1, drgi, "DRGI")):
        m = margin_distribution(bundle.sim, bundle.text_to_video)
        s = margin_summary(m)
        assert table["median"].iloc[row] == pytest.approx(s.median)
        assert table["mean"].iloc[row] == pytest.approx(s.mean)
        assert table["beaten (%)"].iloc[row] == pytest.approx(100 * s.negative_share)
        assert_histogram_of(hist[label], m)

        family = [v.family for v in split_meta(bundle).videos]
        hn = hard_negatives(bundle.sim, bundle.text_to_video, video_to_family=family, k=10)
        bars = chart(at, f"hn_query_{label}")["data"][0]
        custom = plotly_array(bars["customdata"])
        k = len(bars["x"]) - 1
        assert custom[0, 0] == int(bundle.text_to_video[q])
        np.testing.assert_array_equal(custom[1:, 0], hn.video_ids[q, :k])
        np.testing.assert_allclose(custom[:, 1], [hn.gt_scores[q], *hn.scores[q, :k]],
                                   rtol=1e-6)

    hub = table_with(at, "run", "skew", "anti-hubs (%)")
    k_hub = int(at.slider(key="hn_hub_k").value)
    expected = hubness_summary(hubness(base.sim, k=k_hub), k_hub)
    assert hub["skew"].iloc[0] == pytest.approx(expected.skew)
    assert hub["max"].iloc[0] == expected.max
    disc = chart(at, "hn_disc_DRGI")["data"]
    tq = drgi.drgi.text_queries
    keep = np.asarray(tq.neg_valid, dtype=bool) & np.isfinite(tq.neg)
    assert_histogram_of(disc[0], tq.pos[keep])
    assert_histogram_of(disc[1], tq.neg[keep])
    assert any("trained without DRGI" in i.value for i in at.info)  # the base run has none


def test_hard_negatives_row_pick_moves_the_query(app_env):
    at = open_page(HARD_NEGATIVES)
    table = [d for d in at.dataframe if getattr(d, "key", None) == "hn_hardest"][0].value
    at.session_state["hn_hardest"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert_no_errors(at)
    assert at.number_input(key="q").value == int(table["query"].iloc[1])


def test_hard_negatives_base_only(app_env):
    at = open_page(HARD_NEGATIVES, drgi="(none)")
    assert any("trained without DRGI" in i.value for i in at.info)
    names = [t["name"] for t in chart(at, "hn_margins")["data"]]
    assert len(names) == 1


def test_hard_negatives_page_states_the_information_test(app_env):
    drgi = page_bundle(app_env, app_env.drgi)
    diag = drgi.meta["drgi"]["diagnostics"]
    at = open_page(HARD_NEGATIVES)
    verdicts = [m.value for m in at.markdown if "chance is 50 %" in m.value]
    assert len(verdicts) == 1, verdicts  # the DRGI run only
    assert f"{100 * diag['video']['acc']:.1f} %" in verdicts[0]
    assert f"{100 * diag['text']['acc']:.1f} %" in verdicts[0]
    table = table_with(at, "quantity", "captions → videos", "videos → captions")
    assert len(table) == 6 and table["captions → videos"].iloc[0] == f"{100 * diag['video']['acc']:.1f} %"
    curves = chart(at, "hn_drgi_curves_DRGI")["data"]  # training curves from log.jsonl
    assert {c["name"] for c in curves} >= {"disc. accuracy (training negatives)",
                                           "attention entropy, words"}


def test_discriminator_switch_only_when_the_directions_differ(app_env):
    from analysis.drgi_report import same_pairs
    from tests.helpers_app import open_page, page_bundle

    d = page_bundle(app_env, app_env.drgi).drgi
    at = open_page("app_pages/hard_negatives.py")
    has_switch = any(r.key == "hn_disc_dir" for r in at.radio)
    assert has_switch == (not same_pairs(d.text_queries, d.video_queries))
    if not has_switch:
        assert any("same pairs" in c.value for c in at.caption)
