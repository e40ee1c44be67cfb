"""Live text-to-video search over a cached gallery (the app's live-query page).

:class:`LiveSearch` is built once per (run, bundle) and reused for every query: it keeps the
gallery's head-embedded video features and precomputes what scoring needs, so a request only
runs the text tower and the scoring. Videos are never decoded here.

Two scoring paths, named in every :class:`~analysis.search_result.SearchResult`:

- ``"factorized"`` (meanP, seqTransf: ``head.factorized``): the score is the dot product of
  pooled vectors, so one matrix-vector product over the cached ``[Nv, D]`` float32 matrix plus a
  top-k gives the exact ranking. The pooled vectors are used exactly as the head produced them
  (the heads normalise them), so the scores equal the head's own, on the cosine scale.
- ``"shortlist"`` (WTI, X-CLIP, ... : token-wise or cross heads): a coarse matrix-vector product
  picks the ``shortlist`` best videos, which are then re-scored with the head's own ``score``
  and re-ranked. Videos outside the shortlist are never scored, so a true top-k video can be
  missed when the coarse score ranks it below the shortlist. The coarse vectors are what the
  head declares (``SimilarityHead.coarse``); for WTI (``"token_mean"``) the weight-averaged
  normalised tokens of each side: ``(sum_i w_i t_i) . (sum_j w_j v_j)`` is a
  lower bound of the WTI score (a max is at least any weighted mean, on both directions); for
  other heads the ``pooled`` vectors. The shortlist is widened to ``k`` when ``k`` is larger.
  ``"exhaustive"`` is the same re-scoring applied to every video, used when the shortlist
  covers the gallery: it equals full scoring.

Per-word explanations of each hit (``SearchResult.word_scores``), labelled by
``word_score_kind``:

- ``"contribution"`` (heads declaring ``token_scores``, e.g. WTI): each text token's term
  ``w_i * max_j cos(word_i, frame_j)`` of the text-to-video half of the score; a hit's row sums
  to that half (the score is the mean of both halves).
- ``"word relevance"`` (every other head): the cosine of each (normalised) text token with the
  video's pooled vector. It is **not** part of the model's score (factorized heads score the
  sentence vector only), just a cheap indication of which words point towards the video.

Messages: an empty or whitespace-only query gives a result with ``error`` set and no search;
an over-long query is truncated to ``max_words`` tokens and says so; words never seen in
training, and words holding characters the vocabulary cannot represent (emoji, ``é`` for an
ASCII vocabulary: their tokens are left out of the query), are listed
(``TextTokenizer.unknown_words``, :attr:`SearchResult.unknown_warning`). A query with nothing
the model can represent gives a result with ``error`` set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from analysis.search_result import (
    CONTRIBUTION,
    CONTRIBUTION_NOTE,
    EMPTY_QUERY,
    RELEVANCE_NOTE,
    WORD_RELEVANCE,
    SearchPath,
    SearchResult,
)
from tvr.models.features import TokenFeatures
from tvr.models.heads.base import SimilarityHead

logger = logging.getLogger(__name__)

CoarseKind = Literal["auto", "pooled", "token_mean"]

_RERANK_CHUNK = 4096  # videos gathered and re-scored at once (bounds the gathered copy)
_COARSE_CHUNK = 65536  # videos per chunk when precomputing coarse vectors


def _weighted_token_mean(feats: TokenFeatures, chunk: int = _COARSE_CHUNK) -> Tensor:
    """``sum_n w_n tokens_n`` per item in float32 (weights are 0 on padding).

    Shapes:
        feats: tokens ``[B, N, D]``, weights ``[B, N]`` -> ``[B, D]`` float32
    """
    if feats.weights is None:
        raise ValueError("token-mean coarse vectors need token weights (head-embedded features)")
    out = torch.empty(len(feats), feats.tokens.shape[-1], dtype=torch.float32)
    for s in range(0, len(feats), chunk):
        tok = feats.tokens[s : s + chunk].float()  # [b, N, D]
        w = (feats.weights[s : s + chunk].float() * feats.mask[s : s + chunk].float())  # [b, N]
        out[s : s + chunk] = torch.einsum("bn,bnd->bd", w, tok)
    return out


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return int(value)


class LiveSearch:
    """Text-to-video search over a fixed, cached gallery.

    Build once per (run, bundle) and call :meth:`search` per request. The object is read-only
    after construction, so one instance can serve concurrent requests.

    Args:
        model: a ``Retriever`` (or any module with ``encode_text``, ``score``, ``factorized``
            and ``head``) in eval mode.
        tokenizer: the run's ``TextTokenizer``.
        video: the gallery's **head-embedded** video features (``model.encode_video`` output,
            e.g. from an analysis bundle), with token weights for WTI. Tokens may be float16
            to save memory; they are cast to float32 when scored.
        video_ids: one id per gallery row.
        max_words: the run's ``data.max_words`` (text length with SOT and EOT).
        shortlist: videos kept by the coarse pass of non-factorized heads.
        coarse: coarse vectors for the shortlist: ``"auto"`` (token means for WTI, pooled
            otherwise), ``"pooled"`` or ``"token_mean"``.
        warmup: run one throw-away query at construction, so the first real query is not
            slowed by one-off allocations, and dimension mismatches fail here.

    Shapes:
        video: tokens ``[Nv, T, D]``, mask ``[Nv, T]``, pooled ``[Nv, D]``
        search -> SearchResult with ``indices`` ``[k]``, ``word_scores`` ``[k, L']``

    Raises:
        ValueError: a model in training mode, an empty gallery, ids that do not match the
            gallery, non-finite pooled vectors, or features missing what the head needs.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        video: TokenFeatures,
        video_ids: Sequence[str],
        *,
        max_words: int,
        shortlist: int = 200,
        coarse: CoarseKind = "auto",
        warmup: bool = True,
    ) -> None:
        if not isinstance(video, TokenFeatures):
            raise TypeError(f"video: expected TokenFeatures, got {type(video).__name__}")
        if getattr(model, "training", False):
            raise ValueError("LiveSearch: the model is in training mode; call model.eval() first")
        self.max_words = _check_positive_int(max_words, "max_words")
        if self.max_words < 2:
            raise ValueError(f"max_words={max_words}: expected >= 2 (room for SOT and EOT)")
        self.shortlist = _check_positive_int(shortlist, "shortlist")
        n_videos = len(video)
        if n_videos == 0:
            raise ValueError("LiveSearch: the gallery is empty (video has 0 rows)")
        self.video_ids = [str(v) for v in video_ids]
        if len(self.video_ids) != n_videos:
            raise ValueError(
                f"video_ids: {len(self.video_ids)} ids for {n_videos} gallery videos; expected "
                "one id per row of video"
            )
        self.model = model
        self.tokenizer = tokenizer
        head = getattr(model, "head", None)  # a Retriever's; other scorers have none
        self.head: SimilarityHead | None = head if isinstance(head, SimilarityHead) else None
        self.head_name = type(self.head).__name__ if self.head is not None else type(model).__name__
        self.factorized = bool(model.factorized)
        self.n_videos = n_videos

        pooled = video.pooled.detach().to("cpu", torch.float32).contiguous()  # [Nv, D]
        bad = ~torch.isfinite(pooled).all(dim=1)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"video.pooled row {row} ({self.video_ids[row]!r}) is not finite; the gallery "
                "features are corrupt"
            )
        self._pooled = pooled
        self._video: TokenFeatures | None = None
        self.coarse_kind: str = "none"
        if self.factorized:
            self._matrix = pooled  # [Nv, D]: the exact scores are matrix @ text.pooled
        else:
            self._video = video.detach().to("cpu")
            if self.head is not None and self.head.needs_token_weights and video.weights is None:
                raise ValueError(
                    f"{self.head_name} scores need token weights, but the video features carry "
                    "none: pass model.encode_video output (head-embedded), not raw backbone "
                    "features"
                )
            self.coarse_kind = self._choose_coarse(coarse, video)
            if self.coarse_kind == "token_mean":
                self._matrix = _weighted_token_mean(self._video).contiguous()
            else:
                self._matrix = pooled
        if warmup:
            self._warmup()

    # ------------------------------------------------------------------ construction helpers
    def _choose_coarse(self, coarse: str, video: TokenFeatures) -> str:
        if coarse not in ("auto", "pooled", "token_mean"):
            raise ValueError(f"coarse={coarse!r}: expected 'auto', 'pooled' or 'token_mean'")
        if coarse == "auto":
            declared = self.head.coarse if self.head is not None else "pooled"
            return "token_mean" if declared == "token_mean" and video.weights is not None else "pooled"
        if coarse == "token_mean" and video.weights is None:
            raise ValueError("coarse='token_mean' needs token weights on the video features")
        return coarse

    def _warmup(self) -> None:
        text = self.encode_query("a")
        dim = text.pooled.shape[-1]
        if dim != self._matrix.shape[1]:
            raise ValueError(
                f"the text tower gives {dim}-d features but the gallery's are "
                f"{self._matrix.shape[1]}-d: the video features come from another model"
            )
        with torch.inference_mode():
            self._rank(text, 1)

    # ------------------------------------------------------------------ public API
    def n_scored(self, k: int) -> int:
        """Videos scored with the head's own score for a top-``k`` query.

        All of them on the factorized path; otherwise the shortlist, widened to ``k`` so a
        query always gets ``min(k, Nv)`` hits.
        """
        if self.factorized:
            return self.n_videos
        return min(max(self.shortlist, int(k)), self.n_videos)

    def path(self, k: int = 1) -> SearchPath:
        """The scoring path a top-``k`` query takes (see the module docstring)."""
        if self.factorized:
            return "factorized"
        return "exhaustive" if self.n_scored(k) >= self.n_videos else "shortlist"

    def describe(self, k: int = 1) -> str:
        """One sentence on how a top-``k`` query is scored."""
        if self.factorized:
            return (
                f"factorized: one matrix-vector product over {self.n_videos} cached pooled "
                f"vectors ({self.head_name}), then top-k"
            )
        if self.path(k) == "exhaustive":
            return (
                f"exhaustive: all {self.n_videos} videos scored with the {self.head_name} score "
                f"(shortlist {self.n_scored(k)} >= gallery)"
            )
        if self.coarse_kind == "token_mean":
            coarse = "weighted token means"
            if self.head is not None and self.head.coarse == "token_mean":
                coarse += f" (a lower bound of the {self.head_name} score)"
        else:
            coarse = "pooled vectors"
        return (
            f"shortlist: top {self.n_scored(k)} of {self.n_videos} videos by a dot product of "
            f"{coarse}, re-ranked with the {self.head_name} score"
        )

    def encode_query(self, text: str) -> TokenFeatures:
        """Head-embedded features of one query (truncated to ``max_words`` tokens).

        Use ``.pooled`` (the sentence vector) to place the query on an embeddings map with
        :class:`analysis.projection.PointPlacer`.

        Shapes:
            returns TokenFeatures ``[1, max_words, D]``

        Raises:
            TypeError: ``text`` is not a string.
            ValueError: ``text`` is empty or whitespace only.
        """
        if not isinstance(text, str):
            raise TypeError(f"query: expected str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(EMPTY_QUERY)
        return self._encode(text)[1]

    @torch.inference_mode()
    def _encode(self, text: str) -> tuple[Tensor, TokenFeatures]:
        ids, mask = self.tokenizer.encode([text], self.max_words)  # [1, L], [1, L]
        return ids, self.model.encode_text(ids, mask).to("cpu")

    def search(self, text: str, k: int = 10) -> SearchResult:
        """Find the ``k`` best videos for ``text``.

        An empty or whitespace-only query returns a result with ``error`` set (no search).

        Raises:
            TypeError: ``text`` is not a string.
            ValueError: ``k`` is not a positive integer.
        """
        if not isinstance(text, str):
            raise TypeError(f"query: expected str, got {type(text).__name__}")
        k = _check_positive_int(k, "k")
        if not text.strip():
            return self._no_search(text, k, EMPTY_QUERY)

        messages: list[str] = []
        truncated = bool(self.tokenizer.truncated(text, self.max_words))
        unknown = list(self.tokenizer.unknown_words(text))
        unrepresentable = list(self.tokenizer.unrepresentable_words(text))
        bad_chars = list(self.tokenizer.unknown_characters(text))
        if self.tokenizer.num_tokens(text) == 0:
            shown = ", ".join(unrepresentable or bad_chars) or repr(text)
            result = self._no_search(
                text, k, f"Nothing in the query can be represented by this model ({shown})."
            )
            return replace(
                result,
                unknown_words=unknown,
                unrepresentable_words=unrepresentable,
                unknown_characters=bad_chars,
            )
        t0 = time.perf_counter()
        ids, feats = self._encode(text)
        t1 = time.perf_counter()
        with torch.inference_mode():
            indices, scores = self._rank(feats, k)
        t2 = time.perf_counter()
        tokens, word_scores, kind = self._explain(feats, ids[0].tolist(), text, unknown, indices)
        t3 = time.perf_counter()

        if truncated:
            n_tokens = self.tokenizer.num_tokens(text)
            kept = self.tokenizer.decode(ids[0])
            messages.append(
                f"The query has {n_tokens} tokens but the model reads at most "
                f"{self.max_words - 2} (max_words={self.max_words} with the start and end "
                f'tokens); the rest was ignored. Searched for: "{kept}".'
            )
        if bad_chars:
            messages.append(
                "Characters the model cannot represent were left out of the query: "
                + ", ".join(bad_chars)
                + " (in "
                + ", ".join(unrepresentable)
                + ")."
            )
        unseen = [w for w in unknown if w not in unrepresentable]
        if unknown:
            content = [w for w in self.tokenizer.words(text) if any(c.isalnum() for c in w)]
            if content and set(content) <= set(unknown):
                messages.append(
                    "None of the query's words were seen in training ("
                    + ", ".join(unknown)
                    + "); the results carry no meaning."
                )
            elif unseen:
                messages.append(
                    "Words never seen in training: "
                    + ", ".join(unseen)
                    + ". The model has no learned meaning for them; the results rest on the "
                    "other words."
                )
        if k > self.n_videos:
            messages.append(f"The gallery holds only {self.n_videos} videos; all are shown.")

        idx = indices.numpy().astype(np.int64)
        return SearchResult(
            query=text,
            k=k,
            indices=idx,
            video_ids=[self.video_ids[i] for i in idx],
            scores=scores.numpy().astype(np.float32),
            path=self.path(k),
            path_detail=self.describe(k),
            n_videos=self.n_videos,
            n_scored=self.n_scored(k),
            encode_ms=(t1 - t0) * 1e3,
            score_ms=(t2 - t1) * 1e3,
            explain_ms=(t3 - t2) * 1e3,
            tokens=tokens,
            word_scores=word_scores,
            word_score_kind=kind,
            word_score_note=CONTRIBUTION_NOTE if kind == CONTRIBUTION else RELEVANCE_NOTE,
            truncated=truncated,
            unknown_words=unknown,
            unrepresentable_words=unrepresentable,
            unknown_characters=bad_chars,
            messages=messages,
        )

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def rank(self, text: TokenFeatures, k: int) -> tuple[Tensor, Tensor]:
        """Top-``k`` gallery rows and head scores for already-encoded query features.

        Shapes:
            text: TokenFeatures ``[1, L, D]`` (``encode_query`` output) ->
            (indices ``[min(k, Nv)]`` int64, scores ``[min(k, Nv)]`` float32), best first.
        """
        if len(text) != 1:
            raise ValueError(f"rank: expected features of one query, got {len(text)}")
        return self._rank(text, _check_positive_int(k, "k"))

    def _rank(self, text: TokenFeatures, k: int) -> tuple[Tensor, Tensor]:
        k = min(k, self.n_videos)
        if self.factorized:
            q = text.pooled[0].float()  # [D]
            scores = self._matrix @ q  # [Nv]
            top = torch.topk(scores, k)
            return top.indices, top.values
        n_scored = self.n_scored(k)
        if n_scored >= self.n_videos:
            candidates = torch.arange(self.n_videos)
        else:
            coarse_q = (
                _weighted_token_mean(text)[0]
                if self.coarse_kind == "token_mean"
                else text.pooled[0].float()
            )
            coarse = self._matrix @ coarse_q  # [Nv]
            candidates = torch.topk(coarse, n_scored).indices  # [S]
        exact = self._score_rows(text, candidates)  # [S]
        order = torch.sort(exact, descending=True, stable=True).indices[:k]
        return candidates[order], exact[order]

    def _gather(self, rows: Tensor) -> TokenFeatures:
        assert self._video is not None
        sub = self._video[rows]
        dtype = self._pooled.dtype
        return sub.map(lambda t: t.to(dtype) if t.is_floating_point() else t)

    def _score_rows(self, text: TokenFeatures, rows: Tensor) -> Tensor:
        """Head scores of the query against gallery ``rows``.

        Shapes:
            rows ``[S]`` -> ``[S]`` float32
        """
        out = torch.empty(len(rows), dtype=torch.float32)
        for s in range(0, len(rows), _RERANK_CHUNK):
            chunk = rows[s : s + _RERANK_CHUNK]
            out[s : s + len(chunk)] = self.model.score(text, self._gather(chunk))[0].float()
        return out

    # ------------------------------------------------------------------ explanations
    def _token_labels(
        self, text: str, unknown: Sequence[str], ids: Sequence[int], n_valid: int
    ) -> list[str]:
        """Labels of the ``n_valid`` valid positions: ``<sot>``, the word of each body token,
        ``<eot>``.

        Each word of :meth:`TextTokenizer.words` owns :meth:`TextTokenizer.num_tokens` of its
        text consecutive body tokens (BPE never merges across pre-tokenised words; characters
        the vocabulary cannot represent own none). A word of ``n > 1`` tokens labels them
        ``"word 1/n"`` .. ``"word n/n"``, so a word split into letters is never shown as single
        letters; words in ``unknown`` (:meth:`TextTokenizer.unknown_words`) end with ``?``.
        Should the words not account for the tokens, the decoded pieces of ``ids`` are used.
        """
        n_body = n_valid - 2  # SOT and EOT around the (possibly truncated) body
        words = self.tokenizer.words(text)
        counts = [self.tokenizer.num_tokens(w) for w in words]
        if sum(counts) != self.tokenizer.num_tokens(text):  # not word-wise: never mislabel
            logger.warning("query %r: tokens do not align with words; labelling pieces", text)
            pieces = [
                self.tokenizer.decode([int(t)]) or f"<{int(t)}>" for t in ids[1 : n_valid - 1]
            ]
            return ["<sot>", *pieces, "<eot>"]
        bad = set(unknown)
        body: list[str] = []
        for word, n in zip(words, counts, strict=True):
            name = f"{word}?" if word in bad else word
            body += [name] if n == 1 else [f"{name} {j}/{n}" for j in range(1, n + 1)]
        return ["<sot>", *body[:n_body], "<eot>"]

    @torch.inference_mode()
    def _explain(
        self,
        text: TokenFeatures,
        ids: Sequence[int],
        query: str,
        unknown: Sequence[str],
        indices: Tensor,
    ) -> tuple[list[str], np.ndarray | None, str | None]:
        """Labels of the valid text positions and per-token scores ``[k, L']`` of each hit."""
        valid = text.mask[0].bool()  # [L]; SOT..EOT are contiguous from position 0
        n_valid = int(valid.sum())
        if len(indices) == 0 or n_valid == 0:
            return [], None, None
        tokens = self._token_labels(query, unknown, ids, n_valid)
        k = len(indices)
        if (self.head is not None and self.head.token_scores and self._video is not None
                and text.weights is not None):
            rep = text[torch.zeros(k, dtype=torch.long)]  # the query once per hit
            scores = self.head.word_contributions(rep, self._gather(indices))  # [k, L]
            return tokens, scores[:, valid].float().numpy(), CONTRIBUTION
        words = F.normalize(text.tokens[0, valid].float(), dim=-1)  # [L', D]
        vids = F.normalize(self._pooled[indices], dim=-1)  # [k, D]
        return tokens, (vids @ words.T).numpy().astype(np.float32), WORD_RELEVANCE

    def _no_search(self, text: str, k: int, error: str) -> SearchResult:
        return SearchResult(
            query=text,
            k=k,
            indices=np.empty(0, dtype=np.int64),
            video_ids=[],
            scores=np.empty(0, dtype=np.float32),
            path="none",
            path_detail="no search: " + error,
            n_videos=self.n_videos,
            n_scored=0,
            encode_ms=0.0,
            score_ms=0.0,
            explain_ms=0.0,
            error=error,
        )


# ============================================================================ app helpers


def live_search_for_bundle(
    run_dir: str | Any, bundle: Any, *, shortlist: int = 200, device: str = "cpu"
) -> LiveSearch:
    """A :class:`LiveSearch` of the run ``run_dir`` over the gallery of an analysis bundle.

    Loads the checkpoint with :func:`tvr.checkpoint.load_pretrained`, drops training-only
    modules (:meth:`Retriever.for_inference`) and uses the bundle's stored head-embedded video
    features, so no video is decoded.

    Args:
        run_dir: the run folder (``config.json`` + ``model.safetensors``).
        bundle: an :class:`analysis.bundle.Bundle` exported from that run.
        shortlist: videos re-scored by non-factorized heads.
        device: where the text tower runs.

    Raises:
        ValueError: the bundle was exported from another run (its recorded checkpoint hash
            differs from the run's), or the features do not fit the model.
    """
    from analysis.bundle import checkpoint_hash
    from tvr.checkpoint import load_pretrained

    recorded = bundle.meta.get("checkpoint_hash", {})
    current = checkpoint_hash(run_dir)
    if recorded and any(current.get(k) != v for k, v in recorded.items()):
        raise ValueError(
            f"bundle {bundle.path} was exported from another checkpoint than {run_dir} "
            "(sha256 differs); re-export it before searching"
        )
    model, tokenizer, cfg = load_pretrained(run_dir, device=device)
    if hasattr(model, "for_inference"):
        model = model.for_inference()
    return LiveSearch(
        model, tokenizer, bundle.video_features(), bundle.video_ids,
        max_words=int(cfg.data.max_words), shortlist=shortlist,
    )


def query_vector(search: LiveSearch, text: str) -> np.ndarray:
    """The pooled (sentence) vector of a query as float32 numpy, to place it on a map.

    Shapes:
        -> ``[D]``
    """
    return search.encode_query(text).pooled[0].float().numpy()


def pooled_map_points(bundle: Any, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The pooled texts and videos of a bundle with their coordinates in the map of
    ``method``, stacked (texts first): the training set of a
    :class:`analysis.projection.PointPlacer` for new queries.

    Shapes:
        -> X ``[Nt + Nv, D]`` float32, coords ``[Nt + Nv, 2]`` float32

    Raises:
        KeyError: the bundle has no map of ``method``.
    """
    proj = bundle.projections
    x = np.concatenate([np.asarray(bundle.text_pooled), np.asarray(bundle.video_pooled)])
    coords = np.concatenate([proj.get(method, "texts"), proj.get(method, "videos")])
    return x.astype(np.float32), coords.astype(np.float32)
