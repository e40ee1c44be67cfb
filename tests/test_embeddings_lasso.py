"""Tests for benchmarks/embeddings_lasso.py: the DevTools profile summary and the /proc
reading (no browser needed)."""

from __future__ import annotations

import os

import pytest

from benchmarks.embeddings_lasso import cpu_snapshot, profile_summary


def _frame(name: str, url: str = "", line: int = 0) -> dict:
    return {"functionName": name, "url": url, "lineNumber": line}


def test_profile_summary_adds_each_sample_gap_to_its_function_and_script():
    profile = {
        "nodes": [
            {"id": 1, "callFrame": _frame("(root)")},
            {"id": 2, "callFrame": _frame("draw", "http://x/static/Plotly.js", 9)},
            {"id": 3, "callFrame": _frame("", "http://x/static/Plotly.js", 41)},
            {"id": 4, "callFrame": _frame("(program)")},
            {"id": 5, "callFrame": _frame("draw", "http://x/static/Plotly.js", 9)},  # same fn
        ],
        # a sample's time is the gap to the next sample (microseconds); the last has none
        "samples": [2, 3, 4, 5, 2, 4],
        "timeDeltas": [0, 1000, 2000, 3000, 4000, 5000],
    }
    by_fn, by_url, total = profile_summary(profile)
    assert dict(by_fn) == pytest.approx({"draw · Plotly.js:10": 1.0 + 4.0 + 5.0,
                                         "(anonymous) · Plotly.js:42": 2.0,
                                         "(program)": 3.0})
    assert by_fn[0][0] == "draw · Plotly.js:10"  # largest first
    assert dict(by_url) == pytest.approx({"Plotly.js": 12.0, "(program)": 3.0})
    assert total == pytest.approx(15.0)
    by_fn, _, _ = profile_summary(profile, top=1)
    assert len(by_fn) == 1


def test_cpu_snapshot_counts_the_server_tree_and_no_chromium_here():
    spent = sum(i * i for i in range(200_000))  # some CPU in this process
    snap = cpu_snapshot(os.getpid())
    assert spent > 0 and snap["server"] > 0
    assert snap["gpu"] == snap["renderer"] == snap["other"] == 0  # no browser started
