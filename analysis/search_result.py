"""What one live query returns (:class:`SearchResult`), and the labels and messages it carries.

:class:`analysis.query.LiveSearch` fills it; the app's live-query page shows it. The scoring
paths and the two kinds of per-word scores are described in :mod:`analysis.query`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SearchPath = Literal["factorized", "shortlist", "exhaustive", "none"]

CONTRIBUTION = "contribution"
WORD_RELEVANCE = "word relevance"
CONTRIBUTION_NOTE = (
    "WTI contribution: the token's term w_i * max_j cos(word_i, frame_j) of the text-to-video "
    "half of the score (a row sums to that half; the score is the mean of both halves)"
)
RELEVANCE_NOTE = (
    "word relevance: cosine of the token with the video's pooled vector; NOT part of the "
    "model's score (this head scores the whole sentence vector), only an indication"
)
EMPTY_QUERY = (
    'Empty query: type a description of the video to find, e.g. "a red circle moves left".'
)


@dataclass(frozen=True)
class SearchResult:
    """The answer to one live query.

    Attributes:
        query: the query text as given.
        k: the number of results asked for.
        indices: ``[k']`` int64 gallery rows of the hits, best first (``k' = min(k, Nv)``;
            empty when ``error`` is set).
        video_ids: the hits' video ids.
        scores: ``[k']`` float32 head scores (cosine scale).
        path: ``"factorized"``, ``"shortlist"``, ``"exhaustive"``, or ``"none"`` (no search).
        path_detail: one human-readable sentence on how the hits were scored.
        n_videos: gallery size.
        n_scored: videos scored with the head's own score (all of them on the factorized and
            exhaustive paths, the shortlist otherwise).
        encode_ms: tokenising plus the text tower.
        score_ms: coarse and exact scoring plus top-k.
        explain_ms: per-word scores of the hits.
        tokens: labels of the query's valid text positions, one per position: ``<sot>``, the
            word each token belongs to (``"dog 2/3"`` for piece 2 of a word split into 3
            tokens; ``"zebra?"`` for a word unknown to the model), ``<eot>``. Repeated words
            repeat; :attr:`token_columns` adds the position to make them unique.
        word_scores: ``[k', len(tokens)]`` float32 per-token scores for each hit, or None.
        word_score_kind: ``"contribution"`` or ``"word relevance"`` (see the module
            docstring), or None.
        word_score_note: what ``word_scores`` mean, for display.
        truncated: whether the query was cut to ``max_words`` tokens.
        unknown_words: words of the query the model does not know: never seen in training, or
            holding a character the vocabulary cannot represent (emoji included).
        unrepresentable_words: the words among them whose characters could not be encoded
            (their tokens were left out of the query).
        unknown_characters: those characters.
        messages: notes for the user (truncation, unknown words, small gallery).
        error: why no search ran (empty query), else None.
    """

    query: str
    k: int
    indices: np.ndarray
    video_ids: list[str]
    scores: np.ndarray
    path: SearchPath
    path_detail: str
    n_videos: int
    n_scored: int
    encode_ms: float
    score_ms: float
    explain_ms: float
    tokens: list[str] = field(default_factory=list)
    word_scores: np.ndarray | None = None
    word_score_kind: str | None = None
    word_score_note: str = ""
    truncated: bool = False
    unknown_words: list[str] = field(default_factory=list)
    unrepresentable_words: list[str] = field(default_factory=list)
    unknown_characters: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when a search ran."""
        return self.error is None

    @property
    def unknown_warning(self) -> str | None:
        """One sentence listing every word of the query unknown to the model, or None."""
        if not self.unknown_words:
            return None
        listed = ", ".join(f"“{w}”" for w in self.unknown_words)
        parts = [f"Unknown to this model: {listed}."]
        if self.unknown_characters:
            chars = ", ".join(f"“{c}”" for c in self.unknown_characters)
            parts.append(f"Characters it cannot represent ({chars}) were left out of the query.")
        if set(self.unknown_words) - set(self.unrepresentable_words):
            parts.append("Words never seen in training carry no learned meaning.")
        return " ".join(parts)

    @property
    def token_columns(self) -> list[str]:
        """One unique label per valid text position, ``"i:token"`` (``i`` counts from SOT
        at 0), the columns of :attr:`word_scores`: repeated tokens stay distinct."""
        return [f"{i}:{t}" for i, t in enumerate(self.tokens)]

    @property
    def total_ms(self) -> float:
        return self.encode_ms + self.score_ms + self.explain_ms
