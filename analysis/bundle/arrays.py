"""The array records a :class:`~analysis.bundle.Bundle` hands out: ranks, DRGI scores and
attention, 2-D maps. Arrays are read-only numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.bundle.files import PROJECTION_KINDS


def read_only(arr: np.ndarray) -> np.ndarray:
    """``arr`` with ``writeable=False`` (returned for chaining)."""
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Ranks:
    """Per-query ranks (1-based, ``1 + #{others scoring >= the ground truth}``; ``tvr.metrics``).

    Shapes:
        t2v ``[Nt]``, t2v_tied ``[Nt]`` bool, v2t ``[Nv]``, v2t_tied ``[Nv]`` bool,
        v2t_any / v2t_any_tied ``[Nv]`` (None when every video has one caption),
        text_to_video ``[Nt]``.
    """

    t2v: np.ndarray
    v2t: np.ndarray
    t2v_tied: np.ndarray
    v2t_tied: np.ndarray
    text_to_video: np.ndarray
    v2t_any: np.ndarray | None = None
    v2t_any_tied: np.ndarray | None = None


@dataclass(frozen=True)
class DRGIScores:
    """DRGI discriminator scores of one query direction (mean sigmoid over valid nodes).

    Each query ``q`` is an anchor pair (text ``anchor_text[q]``, video ``anchor_video[q]``);
    its hard negatives, mined on the split's similarity, are the video ``neg_video_index[q]``
    (hardest other video for the text) and the caption ``neg_text_index[q]`` (hardest caption
    of another video for the video). In DRGI's cross mode the video nodes are scored against
    the text summary and the text nodes against the video summary (intra mode: own summary).

    Attributes:
        anchor_text, anchor_video: ``[N]`` int64 the pair of each query.
        pos_video: ``[N]`` nodes of the anchor's video graph.
        neg_video: ``[N]`` nodes of the hard-negative video's graph (NaN without negative).
        pos_text: ``[N]`` nodes of the anchor's caption graph.
        neg_text: ``[N]`` nodes of the hard-negative caption's graph (NaN without negative).
        neg_video_index, neg_text_index: ``[N]`` int64 (the anchor's own where invalid).
        neg_valid: ``[N]`` bool, a negative exists (the split has at least two videos).
    """

    anchor_text: np.ndarray
    anchor_video: np.ndarray
    pos_video: np.ndarray
    neg_video: np.ndarray
    pos_text: np.ndarray
    neg_text: np.ndarray
    neg_video_index: np.ndarray
    neg_text_index: np.ndarray
    neg_valid: np.ndarray

    @property
    def pos(self) -> np.ndarray:
        """``[N]`` ½ (pos_video + pos_text), the objective's ``drgi_pos_score`` per query."""
        return 0.5 * (self.pos_video + self.pos_text)

    @property
    def neg(self) -> np.ndarray:
        """``[N]`` ½ (neg_video + neg_text), the objective's ``drgi_neg_score`` per query."""
        return 0.5 * (self.neg_video + self.neg_text)


@dataclass(frozen=True)
class DRGIArrays:
    """What the DRGI objective computes on the split (runs with DRGI only).

    Nodes are words / frames in token mode (``N = L``, ``M = T``) and K chunks of the pooled
    vector in factor mode (``N = M = K``); ``meta["drgi"]["nodes"]`` says which.

    Attributes:
        text_attention: ``[Nt, H, N, N]`` float16 GAT attention of every caption graph; rows
            of valid nodes sum to 1 over valid nodes, padded rows/columns are 0.
        video_attention: ``[Nv, H, M, M]`` float16, likewise for every video graph.
        text_node_mask: ``[Nt, N]`` bool; video_node_mask: ``[Nv, M]`` bool.
        text_queries: :class:`DRGIScores` with one entry per caption (pair = caption and its
            ground-truth video).
        video_queries: :class:`DRGIScores` with one entry per video (pair = video and its
            first caption).
    """

    text_attention: np.ndarray
    video_attention: np.ndarray
    text_node_mask: np.ndarray
    video_node_mask: np.ndarray
    text_queries: DRGIScores
    video_queries: DRGIScores


@dataclass(frozen=True)
class Projections:
    """2-D maps of the bundle's embeddings, one per method.

    All four kinds of points of one method come from **one joint map** (fitted on words,
    frames, pooled texts and pooled videos together), so they share axes and can be drawn
    together.

    Attributes:
        methods: e.g. ``("umap", "pca")``.
        coords: ``{(method, kind): [N_kind, 2] float32}`` for kind in ``words`` (valid text
            tokens), ``frames`` (valid video tokens), ``texts`` (pooled, ``[Nt, 2]``) and
            ``videos`` (pooled, ``[Nv, 2]``).
        word_ids: ``[Nw, 2]`` int64 (caption index, token position) of each word point.
        frame_ids: ``[Nf, 2]`` int64 (video index, frame position) of each frame point.
        params: ``{method: {"method", "params", "versions"}}`` as fitted.
        fitted_rows: ``{kind: [n_kind] int64}`` rows of each kind the maps were fitted on
            (the others were placed on them), or None when every point was fitted.
    """

    methods: tuple[str, ...]
    coords: dict[tuple[str, str], np.ndarray]
    word_ids: np.ndarray
    frame_ids: np.ndarray
    params: dict[str, Any]
    fitted_rows: dict[str, np.ndarray] | None = None

    def get(self, method: str, kind: str) -> np.ndarray:
        """Coordinates ``[N_kind, 2]`` of ``kind`` in the map of ``method``."""
        if (method, kind) not in self.coords:
            raise KeyError(
                f"no projection {method!r}/{kind!r}; methods {list(self.methods)}, kinds "
                f"{list(PROJECTION_KINDS)}"
            )
        return self.coords[(method, kind)]

