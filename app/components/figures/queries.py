"""The Queries page's figure: a histogram of one column of the joined query table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.components.figures.distributions import binned_bar, histogram_edges


def column_histogram(table: pd.DataFrame, column: str, label: str) -> go.Figure:
    """Queries per value bin of ``table[column]`` (x axis titled ``label``): binned here for a
    numeric column (:func:`~app.components.figures.distributions.histogram_edges`), one bar
    per value, most frequent first, for any other (failure type, status, ...)."""
    if column not in table.columns:
        raise ValueError(f"column {column!r} not in the query table (columns: "
                         f"{', '.join(map(str, table.columns))})")
    col = table[column]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        trace = binned_bar(values, histogram_edges([values]), name=label)
    else:
        counts = col.astype(str).value_counts()
        trace = go.Bar(x=counts.index.tolist(), y=counts.to_numpy(), name=label)
    fig = go.Figure(trace)
    fig.update_layout(height=260, bargap=0.05, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis_title=label, yaxis_title="queries")
    return fig
