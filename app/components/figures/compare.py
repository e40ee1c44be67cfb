"""The Compare page's figure: rank change per query against the base rank, one point per
pair of ranks sized and labelled by how many queries share it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.components.palette import OUTCOME_COLOURS

MAX_TEXT_POINTS = 3000  # above this many rank pairs: WebGL points without count labels


def rank_change_figure(pairs: pd.DataFrame, *, what: str, base_name: str,
                       counts: dict[str, int], n: int) -> go.Figure:
    """Δ log2 rank vs base rank (log x axis), lasso-selectable.

    Args:
        pairs: :func:`analysis.rankings.rank_pairs` (``rank_a``, ``rank_b``, ``delta_log2``,
            ``count``, ``queries``), one row per distinct pair of ranks.
        what: the query kind ("caption" or "video").
        base_name: the base run's name (axis title).
        counts: ``{"win", "tie", "loss"}`` query counts (annotation).
        n: the number of queries.

    ``customdata`` per point: ``[first query of the pair, queries in it, DRGI rank]``.
    """
    reps = np.asarray([m[0] for m in pairs["queries"]], dtype=np.int64)
    counts_ = pairs["count"].to_numpy()
    dl = pairs["delta_log2"].to_numpy()
    colours = np.where(dl < 0, OUTCOME_COLOURS["win"],
                       np.where(dl > 0, OUTCOME_COLOURS["loss"], OUTCOME_COLOURS["tie"]))
    many = len(pairs) > MAX_TEXT_POINTS
    trace = dict(
        x=pairs["rank_a"], y=dl, mode="markers" if many else "markers+text", name="queries",
        text=None if many else [str(c) if c > 1 else "" for c in counts_],
        textposition="middle center", textfont=dict(size=10, color="#111"),
        marker=dict(size=np.minimum(7 + 5 * np.sqrt(counts_), 60), opacity=0.7, color=colours,
                    line=dict(width=0.5, color="#333")),
        customdata=np.stack([reps, counts_, pairs["rank_b"]], axis=1),
        hovertemplate=(f"base rank %{{x}} → DRGI rank %{{customdata[2]}}<br>%{{customdata[1]}} "
                       f"{what}(s), e.g. {what} %{{customdata[0]}}<extra></extra>"),
    )
    fig = go.Figure(go.Scattergl(**trace) if many else go.Scatter(**trace))
    fig.add_hline(y=0, line_dash="dot", line_color="#555", layer="below")
    fig.add_annotation(x=0.01, y=0.99, xref="paper", yref="paper", showarrow=False,
                       xanchor="left", yanchor="top", align="left",
                       text=f"{counts['tie']} of {n} tie (grey, on 0) · {counts['win']} DRGI "
                            f"better · {counts['loss']} worse")
    top = int(max(pairs["rank_a"].max(), 2)) if len(pairs) else 2
    fig.update_layout(
        height=520, dragmode="lasso", showlegend=False, margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(type="log", range=[np.log10(0.8), np.log10(top * 1.25)],
                   title=f"base rank ({base_name}, log scale)"),
        yaxis=dict(title="Δ log2 rank = log2(DRGI rank / base rank)", zeroline=False),
        title=f"Rank change per {what} (below 0: DRGI ranks the ground truth higher)",
    )
    return fig
