"""The Queries page's figure: a histogram of one column of the joined query table."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def column_histogram(table: pd.DataFrame, column: str, label: str) -> go.Figure:
    """Queries per value bin of ``table[column]`` (x axis titled ``label``)."""
    if column not in table.columns:
        raise ValueError(f"column {column!r} not in the query table (columns: "
                         f"{', '.join(map(str, table.columns))})")
    fig = px.histogram(table, x=column, height=260, labels={column: label})
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), yaxis_title="queries")
    return fig
