"""The live query's per-token heatmap: one column per token position of the query, one row per
hit, on a sequential colour scale over the values shown."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

COLOR_SCALE = "Viridis"  # sequential: the scores are not centred on a meaningful zero
AXIS_NOTE = (
    "Columns: one per token position of the query (i:token, from <sot> at 0 to <eot>). A word "
    "the tokenizer splits into n pieces has n columns (word 1/n … n/n); “?” marks a word "
    "unknown to this model."
)


def word_score_title(kind: str | None) -> str:
    """``"Word relevance of each query token, per hit"`` (or ``"Contribution …"``)."""
    what = (kind or "score").capitalize()
    return f"{what} of each query token, per hit"


def word_score_heatmap(result: Any) -> go.Figure:
    """Heatmap of ``result.word_scores`` (an :class:`analysis.query.SearchResult`): x are its
    ``token_columns`` (unique ``"i:token"``), y the hits, colour from the smallest to the
    largest score shown."""
    z = np.asarray(result.word_scores, dtype=np.float64)  # [k, L']
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    if hi <= lo:  # one value: give the scale a width
        hi = lo + 1e-6
    kind = result.word_score_kind or "score"
    fig = px.imshow(
        z, x=list(result.token_columns),
        y=[f"#{r} {v}" for r, v in enumerate(result.video_ids, start=1)],
        zmin=lo, zmax=hi, color_continuous_scale=COLOR_SCALE, aspect="auto",
        text_auto=".2f" if z.size <= 400 else False,
        labels={"x": "token", "y": "hit", "color": kind},
    )
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_layout(height=150 + 28 * len(result.video_ids),
                      margin=dict(l=10, r=10, t=40, b=10), title=word_score_title(kind))
    return fig
