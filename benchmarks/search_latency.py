"""Live-search latency of :class:`analysis.query.LiveSearch` against the memory-bandwidth floor.

Random, unit-norm features (D=512, float32) stand in for a cached gallery of 1k, 10k, 100k and
1M videos. Two scoring paths are timed per query (``LiveSearch.rank``: the query's text
features are given, so this is the scoring part of a search):

- factorized head (meanP): one matrix-vector product over the ``[N, D]`` pooled matrix + top-k;
- WTI (12 frames, 32 words) with a shortlist: a coarse matrix-vector product over ``[N, D]``
  weighted token means, top-``shortlist``, then the WTI score of the shortlist and a re-rank.
  WTI stops at 100k videos: its cached frame tokens take ``N * 12 * 512 * 4`` bytes, 2.4 GB at
  100k and 24 GB at 1M (12 GB even in float16), more than the machine's memory allows.

The floor is the time to read the bytes a query must touch once (the ``[N, D]`` matrix, plus
the shortlist's tokens for WTI) at the machine's read bandwidth, measured as the best of several
``torch.sum`` passes over a 1 GiB float32 array. The text tower's time for one query (a CLIP
ViT-B/32-shaped text encoder with random weights, 32 tokens) is reported on its own row, so
end-to-end latency is its p50 plus the scoring p50.

Prints a table and writes the ``## Live search latency`` section of ``benchmarks/RESULTS.md``
(other sections are left untouched).

Usage:
    python benchmarks/search_latency.py [--sizes 1000,10000,100000,1000000] [--threads 2]
                                        [--wti-max 100000] [--no-encoder] [--no-write]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from analysis.query import LiveSearch  # noqa: E402
from benchmarks.results import (  # noqa: E402
    add_results_args,
    command_line,
    load_note,
    timings_ms,
    update_section,
)
from tvr.config import load_config  # noqa: E402
from tvr.models.features import TokenFeatures  # noqa: E402
from tvr.models.heads.meanp import MeanPHead  # noqa: E402
from tvr.models.heads.wti import WTIHead  # noqa: E402

logger = logging.getLogger(__name__)

SECTION = "## Live search latency"
DIM, FRAMES, WORDS = 512, 12, 32
TARGET_MS = 100.0  # factorized head, 100k videos, p50, 2 cores
_GEN_CHUNK = 50_000  # videos generated at once (bounds temporaries)


class HeadOnly(nn.Module):
    """The scoring part of a Retriever (a head, no towers): what ``LiveSearch.rank`` uses."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head
        self.factorized = bool(head.factorized)

    def score(self, text: TokenFeatures, video: TokenFeatures) -> torch.Tensor:
        return self.head.score(text, video)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> TokenFeatures:
        raise NotImplementedError("the benchmark passes encoded query features to rank()")


def _unit(n: int, *shape: int, gen: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(n, *shape, generator=gen), dim=-1)


def pooled_gallery(n: int, gen: torch.Generator) -> TokenFeatures:
    """``[n, D]`` unit vectors; tokens are a ``[n, 1, D]`` view (factorized heads read pooled)."""
    pooled = torch.empty(n, DIM)
    for s in range(0, n, _GEN_CHUNK):
        e = min(n, s + _GEN_CHUNK)
        pooled[s:e] = _unit(e - s, DIM, gen=gen)
    return TokenFeatures(tokens=pooled[:, None, :], mask=torch.ones(n, 1), pooled=pooled)


def wti_gallery(n: int, gen: torch.Generator) -> TokenFeatures:
    """``[n, 12, D]`` unit frame tokens with softmax weights, as ``WTIHead.embed_video`` gives."""
    tokens = torch.empty(n, FRAMES, DIM)
    for s in range(0, n, _GEN_CHUNK):
        e = min(n, s + _GEN_CHUNK)
        tokens[s:e] = _unit(e - s, FRAMES, DIM, gen=gen)
    weights = torch.softmax(torch.randn(n, FRAMES, generator=gen), dim=-1)
    return TokenFeatures(tokens=tokens, mask=torch.ones(n, FRAMES), pooled=tokens.mean(1),
                         weights=weights)


def query(gen: torch.Generator) -> TokenFeatures:
    """One query of 32 valid word tokens with softmax weights."""
    tokens = _unit(1, WORDS, DIM, gen=gen)
    return TokenFeatures(tokens=tokens, mask=torch.ones(1, WORDS),
                         pooled=_unit(1, DIM, gen=gen),
                         weights=torch.softmax(torch.randn(1, WORDS, generator=gen), dim=-1))


def read_bandwidth(gib: float = 1.0, reps: int = 7) -> tuple[float, float]:
    """(best, median) read bandwidth in bytes/s of ``torch.sum`` over a float32 array."""
    x = torch.ones(int(gib * 2**30) // 4)
    # the warm-up call faults the pages in
    times = [ms / 1e3 for ms in timings_ms(lambda _, a=x: a.sum(), range(reps))[0]]
    nbytes = x.numel() * 4
    del x
    gc.collect()
    return nbytes / min(times), nbytes / statistics.median(times)


def time_queries(fn: Callable[[TokenFeatures], object], queries: list[TokenFeatures]) -> list[float]:
    """Per-query ms of ``fn`` over ``queries``, after a warm-up call on the first."""
    return timings_ms(fn, queries)[0]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def encoder_latency(reps: int) -> list[float] | None:
    """Per-query ms of a CLIP ViT-B/32-shaped text tower (random weights, 32 tokens)."""
    try:
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    except ImportError:  # pragma: no cover - transformers is a project dependency
        logger.warning("transformers not importable: no encoder row")
        return None
    cfg = CLIPTextConfig(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=8, max_position_embeddings=77, projection_dim=512,
                         vocab_size=49408)
    model = CLIPTextModelWithProjection(cfg).eval()
    ids = torch.randint(0, 49000, (1, WORDS))
    mask = torch.ones(1, WORDS, dtype=torch.long)
    with torch.inference_mode():
        return timings_ms(lambda _: model(input_ids=ids, attention_mask=mask), range(reps))[0]


def _fmt_bytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _fmt_n(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000",
                        help="comma-separated gallery sizes")
    parser.add_argument("--wti-max", type=int, default=100_000,
                        help="largest gallery for WTI (its tokens take N*12*512*4 bytes)")
    parser.add_argument("--shortlist", type=int, default=200, help="WTI shortlist size")
    parser.add_argument("--k", type=int, default=10, help="hits per query")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per size (<=100k)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--no-encoder", action="store_true", help="skip the text-tower row")
    add_results_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    load_start = os.getloadavg()

    best_bw, median_bw = read_bandwidth()
    logger.info("read bandwidth: best %.1f GB/s, median %.1f GB/s", best_bw / 1e9, median_bw / 1e9)
    gen = torch.Generator().manual_seed(0)
    n_q = max(args.queries, 2)
    queries = [query(gen) for _ in range(n_q)]
    cfg = load_config(None, ["model.head=wti", "wti.temporal=false"])
    rows: list[tuple] = []

    for n in sizes:
        q = queries if n <= 100_000 else queries[: max(2, n_q // 2)]
        video = pooled_gallery(n, gen)
        search = LiveSearch(HeadOnly(MeanPHead(cfg, DIM)).eval(), None, video,
                            [str(i) for i in range(n)], max_words=WORDS, warmup=False)
        times = time_queries(lambda t, s=search: s.rank(t, args.k), q)
        floor_ms = n * DIM * 4 / best_bw * 1e3
        rows.append(("factorized (meanP)", n, n * DIM * 4, pct(times, 50), pct(times, 95),
                     floor_ms, len(q)))
        logger.info("factorized %s: p50 %.2f ms", _fmt_n(n), rows[-1][3])
        del search, video
        gc.collect()

        if n > args.wti_max:
            continue
        video = wti_gallery(n, gen)
        head = WTIHead(cfg, DIM).eval()
        search = LiveSearch(HeadOnly(head).eval(), None, video, [str(i) for i in range(n)],
                            max_words=WORDS, shortlist=args.shortlist, warmup=False)
        times = time_queries(lambda t, s=search: s.rank(t, args.k), q)
        s = min(args.shortlist, n)
        touched = n * DIM * 4 + s * FRAMES * (DIM + 2) * 4  # coarse matrix + shortlist tokens
        cached = video.tokens.numel() * 4 + n * DIM * 4 * 2  # tokens + pooled + coarse
        rows.append((f"WTI, shortlist {s}", n, cached, pct(times, 50), pct(times, 95),
                     touched / best_bw * 1e3, len(q)))
        logger.info("WTI %s: p50 %.2f ms", _fmt_n(n), rows[-1][3])
        del search, video, head
        gc.collect()

    enc = None if args.no_encoder else encoder_latency(reps=max(10, n_q // 2))

    header = ("| path | videos | cached features | p50 (ms) | p95 (ms) | floor (ms) | p50 / floor "
              "| queries |")
    table = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for path, n, nbytes, p50, p95, floor, nq in rows:
        table.append(f"| {path} | {_fmt_n(n)} | {_fmt_bytes(nbytes)} | {p50:.2f} | {p95:.2f} | "
                     f"{floor:.2f} | {p50 / floor:.1f}x | {nq} |")
    for n in sizes:
        if n > args.wti_max:
            table.append(f"| WTI, shortlist {args.shortlist} | {_fmt_n(n)} | "
                         f"{_fmt_bytes(n * FRAMES * DIM * 4)} of tokens: not run | - | - | - | - "
                         "| - |")
    if enc is not None:
        table.append(f"| text tower, one query (CLIP ViT-B/32 shape, {WORDS} tokens) | - | - | "
                     f"{pct(enc, 50):.2f} | {pct(enc, 95):.2f} | - | - | {len(enc)} |")
    print("\n".join(table))

    factorized_100k = next((r for r in rows if r[0].startswith("factorized") and r[1] == 100_000),
                           None)
    verdict = ""
    if factorized_100k is not None:
        ok = factorized_100k[3] < TARGET_MS
        verdict = (f"Target (factorized head, 100k videos, p50 < {TARGET_MS:.0f} ms on 2 cores): "
                   f"{factorized_100k[3]:.1f} ms, {'met' if ok else 'NOT met'}.")
        print(verdict)

    if not args.no_write:
        load_end = os.getloadavg()
        cmd = command_line("benchmarks/search_latency.py", argv)
        body = "\n".join([
            f"Command: `{cmd}`",
            "",
            f"`analysis.query.LiveSearch.rank` (scoring only: the query's text features are "
            f"given), k={args.k}, random unit-norm float32 features, D={DIM}; WTI with "
            f"{FRAMES} frames and {WORDS} words. torch {torch.__version__}, "
            f"{args.threads} threads, Python {platform.python_version()}, {platform.machine()}, "
            f"on {time.strftime('%Y-%m-%d')}.",
            "",
            *table,
            "",
            f"Floor: the bytes a query must read once (the `[N, {DIM}]` matrix; for WTI also the "
            f"shortlist's frame tokens) at the best measured read bandwidth, "
            f"{best_bw / 1e9:.1f} GB/s (median {median_bw / 1e9:.1f} GB/s; `torch.sum` over 1 GiB "
            f"float32, {args.threads} threads). p50 / floor is how far the search is from "
            "purely memory-bound.",
            "",
            f"WTI stops at {_fmt_n(args.wti_max)} videos: its cached frame tokens take "
            f"N x {FRAMES} x {DIM} x 4 bytes (24 GB at 1M, 12 GB in float16), more than this "
            "machine's memory with everything else. Above that, a coarse index over pooled "
            "vectors with tokens on disk (memory-mapped) would be needed.",
            "",
            "End to end, a live query costs the text tower's p50 plus the scoring p50 "
            "(tokenising is well under a millisecond). At 1k videos the matrix sits in the CPU "
            "caches, so the DRAM floor does not bind there (p50 / floor can drop below 1).",
            "",
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}. On this shared "
            "machine the policy matters: with the default (active spin-waiting), OpenMP worker "
            "threads spin between the many small ops of the WTI re-rank and starve the main "
            "thread when other jobs hold the cores; a run on 2026-11-22 at load 4.5 measured "
            "WTI p50 72 ms (1k) and 283 ms (100k) instead of 5.5 ms and 28 ms with "
            "`OMP_WAIT_POLICY=PASSIVE`, and the factorized 100k p50 34 ms instead of 17 ms. "
            "Serve the app with `OMP_WAIT_POLICY=PASSIVE` on a shared machine.",
            "",
            *( [verdict, ""] if verdict else [] ),
            load_note(load_start[0], load_end[0]),
        ])
        update_section(args.results, SECTION, body)
        logger.info("updated %s (%s)", args.results, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
