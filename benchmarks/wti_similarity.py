"""Full-split WTI similarity: the library's GEMM-blocked scoring vs the einsum ways.

1k texts x 1k videos, 32 word tokens (lengths 8-32, the rest padding), 12 frames, D=512,
random unit-norm float32 features with softmax token weights, as ``WTIHead.embed_*`` give.
Each variant runs once in its own subprocess, so its peak memory is its own: the parent reads
the child's peak resident set size (``ru_maxrss``) with ``os.wait4``. A ``baseline`` child
builds the same features and scores nothing; "extra" is a variant's peak minus the baseline's.

- ``gemm``: the library, :func:`tvr.evaluate.similarity_matrix` (512 x 512 sub-batches
  handed to ``WTIHead.score``, which scores blocks of about 100 x 100 pairs, each with one
  matrix product ``[a*L, D] x [D, b*T]`` and two max-reductions of its result);
- ``chunked``: the scoring the library used before, kept here as a reference: the same
  sub-batches, 32 x 32 blocks, each an ``einsum("ald,btd->ablt")`` plus a masked copy;
- ``naive``: the WTI formula on all pairs at once (``einsum("ald,btd->ablt")``, a
  ``[1000, 1000, 32, 12]`` tensor, 1.5 GB, plus its masked copy);
- ``matmul``: not a scorer but a yardstick: every word-frame dot product (padding included)
  as bare float32 matrix products of 100 x 100-pair blocks, with no max and no sum.

The three similarity matrices are compared. Prints a table and writes the
``## WTI full-split similarity`` section of ``benchmarks/RESULTS.md`` (other sections are left
untouched).

Usage:
    python benchmarks/wti_similarity.py [--texts 1000 --videos 1000] [--threads 2] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from benchmarks.results import (  # noqa: E402
    add_results_args,
    command_line,
    load_note,
    update_section,
)

logger = logging.getLogger(__name__)

SECTION = "## WTI full-split similarity"
DIM, FRAMES, WORDS = 512, 12, 32
TARGET_GB = 2.0  # library scoring peak
TARGET_SPEEDUP = 5.0  # library scoring vs naive all-pairs einsum
OLD_BLOCK = 32  # texts x videos per block of the einsum-chunked scoring the library used before
VARIANTS = ("baseline", "gemm", "chunked", "naive", "matmul")


# ----------------------------------------------------------------------------- child process
def _features(n_text: int, n_video: int, seed: int):
    import torch
    import torch.nn.functional as F

    from tvr.models.features import TokenFeatures

    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, WORDS + 1, (n_text,), generator=gen)
    t_mask = (torch.arange(WORDS)[None, :] < lengths[:, None]).float()  # [Nt, L]
    t_w = torch.softmax(torch.randn(n_text, WORDS, generator=gen).masked_fill(t_mask == 0, -1e9),
                        dim=-1) * t_mask
    text = TokenFeatures(
        tokens=F.normalize(torch.randn(n_text, WORDS, DIM, generator=gen), dim=-1),
        mask=t_mask, pooled=F.normalize(torch.randn(n_text, DIM, generator=gen), dim=-1),
        weights=t_w)
    v_tok = F.normalize(torch.randn(n_video, FRAMES, DIM, generator=gen), dim=-1)
    video = TokenFeatures(tokens=v_tok, mask=torch.ones(n_video, FRAMES),
                          pooled=F.normalize(v_tok.mean(1), dim=-1),
                          weights=torch.softmax(torch.randn(n_video, FRAMES, generator=gen), -1))
    return text, video


def _naive(text, video):
    """The WTI score (DRL: padded similarities are 0 in the max) on all pairs at once."""
    import torch

    sims = torch.einsum("ald,btd->ablt", text.tokens, video.tokens)  # [Nt, Nv, L, T]
    valid = text.mask.bool()[:, None, :, None] & video.mask.bool()[None, :, None, :]
    sims = torch.where(valid, sims, 0.0)
    t2v = (sims.max(dim=-1).values * text.weights[:, None, :]).sum(-1)  # [Nt, Nv]
    v2t = (sims.max(dim=-2).values * video.weights[None, :, :]).sum(-1)  # [Nt, Nv]
    return 0.5 * (t2v + v2t)


def _old_chunked(text, video):
    """The library's scoring before the GEMM blocks: the naive formula on 32 x 32 blocks."""
    import torch

    rows = []
    for ts in range(0, len(text), OLD_BLOCK):
        t_blk = text[ts : ts + OLD_BLOCK]
        rows.append(torch.cat([_naive(t_blk, video[vs : vs + OLD_BLOCK])
                               for vs in range(0, len(video), OLD_BLOCK)], dim=1))
    return torch.cat(rows, dim=0)


def _bare_matmuls(text, video) -> None:
    """Every word-frame dot product as float32 block GEMMs, results dropped (the yardstick)."""
    side = 104  # the library's default block side for L=32, T=12
    t = text.tokens.reshape(-1, DIM)
    v = video.tokens.reshape(-1, DIM)
    for ts in range(0, len(t), side * WORDS):
        for vs in range(0, len(v), side * FRAMES):
            t[ts : ts + side * WORDS] @ v[vs : vs + side * FRAMES].T


def child(variant: str, n_text: int, n_video: int, threads: int, seed: int, out: str) -> None:
    import torch

    from tvr.config import load_config
    from tvr.evaluate import similarity_matrix
    from tvr.models.heads.wti import WTIHead

    torch.set_num_threads(threads)
    text, video = _features(n_text, n_video, seed)
    cfg = load_config(None, ["model.head=wti", "wti.temporal=false"])
    head = WTIHead(cfg, DIM).eval()

    class HeadOnly(torch.nn.Module):
        factorized = False

        def __init__(self, score_fn):
            super().__init__()
            self.score_fn = score_fn

        def score(self, t, v):
            return self.score_fn(t, v)

    seconds = 0.0
    with torch.inference_mode():
        t0 = time.perf_counter()
        if variant == "gemm":
            sim = similarity_matrix(HeadOnly(head.score), text, video, progress=False)
        elif variant == "chunked":
            sim = similarity_matrix(HeadOnly(_old_chunked), text, video, progress=False)
        elif variant == "naive":
            sim = _naive(text, video).numpy()
        elif variant == "matmul":
            _bare_matmuls(text, video)
            sim = None
        else:
            sim = None
        seconds = time.perf_counter() - t0
    if sim is not None:
        np.save(out, np.asarray(sim, dtype=np.float32))
    print(json.dumps({"variant": variant, "seconds": seconds}))


# ----------------------------------------------------------------------------- parent
def run_variant(variant: str, args: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant,
           "--texts", str(args.texts), "--videos", str(args.videos),
           "--threads", str(args.threads), "--seed", str(args.seed), "--out", str(out)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True)
        # os.wait4 reaps this very child and returns its own resource usage (peak RSS)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        out_text, err_text = stdout.read(), stderr.read()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"variant {variant} failed (exit {proc.returncode}):\n{err_text[-2000:]}")
    result = json.loads(out_text.strip().splitlines()[-1])
    # ru_maxrss is in KiB on Linux
    result.update(peak_gb=usage.ru_maxrss * 1024 / 1e9, wall=wall)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000, help="text queries (rows)")
    parser.add_argument("--videos", type=int, default=1000, help="videos (columns)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of every variant, in turn; the fastest counts")
    add_results_args(parser)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.texts, args.videos, args.threads, args.seed, args.out)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tvr-wti-") as tmp:
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):  # every variant once per round, in turn
            for variant in VARIANTS:
                out = Path(tmp) / f"{variant}.npy"
                runs[variant].append(run_variant(variant, args, out))
                logger.info("%s: %.2f s, peak RSS %.2f GB", variant,
                            runs[variant][-1]["seconds"], runs[variant][-1]["peak_gb"])
        # the least disturbed run of each variant; the largest peak
        results = {v: {"seconds": min(r["seconds"] for r in rs),
                       "peak_gb": max(r["peak_gb"] for r in rs)} for v, rs in runs.items()}
        sims = {v: np.load(Path(tmp) / f"{v}.npy") for v in ("gemm", "chunked", "naive")}
    max_diff = max(float(np.abs(sims[v] - sims["naive"]).max()) for v in ("gemm", "chunked"))
    load_end = os.getloadavg()

    base = results["baseline"]["peak_gb"]
    n_pairs = args.texts * args.videos
    naive_tensor_gb = n_pairs * WORDS * FRAMES * 4 / 1e9
    header = ("| variant | time (s) | speed-up vs naive | peak RSS (GB) | "
              "extra over baseline (GB) |")
    table = [header, "|---|---:|---:|---:|---:|"]
    labels = {
        "baseline": "baseline (features only, no scoring)",
        "gemm": "library: `similarity_matrix` + `WTIHead.score` (GEMM blocks)",
        "chunked": "before: same sub-batches, 32 x 32 einsum blocks",
        "naive": "naive all-pairs einsum",
        "matmul": "yardstick: the bare float32 matrix products alone (no max, no sum)",
    }
    naive_s = results["naive"]["seconds"]
    for variant in VARIANTS:
        r = results[variant]
        secs = "-" if variant == "baseline" else f"{r['seconds']:.2f}"
        speed = "-" if variant == "baseline" else f"{naive_s / r['seconds']:.1f}x"
        extra = "-" if variant == "baseline" else f"{r['peak_gb'] - base:.2f}"
        table.append(f"| {labels[variant]} | {secs} | {speed} | {r['peak_gb']:.2f} | {extra} |")
    print("\n".join(table))
    speedup = naive_s / results["gemm"]["seconds"]
    ok = results["gemm"]["peak_gb"] < TARGET_GB and speedup >= TARGET_SPEEDUP
    verdict = (f"Target (library >= {TARGET_SPEEDUP:.0f}x faster than the naive einsum with a "
               f"peak < {TARGET_GB:.0f} GB): {speedup:.1f}x, "
               f"{results['gemm']['peak_gb']:.2f} GB, {'met' if ok else 'NOT met'}. Largest "
               f"difference from the naive matrix: {max_diff:.1e}.")
    print(verdict)

    if not args.no_write:
        import torch

        cmd = command_line("benchmarks/wti_similarity.py", argv)
        body = "\n".join([
            f"Command: `{cmd}`",
            "",
            f"{args.texts} texts x {args.videos} videos, WTI with {WORDS} word tokens (8-{WORDS} "
            f"valid), {FRAMES} frames, D={DIM}, float32, each variant run {args.rounds} times in "
            f"its own process, in turn, the fastest run counted; peak RSS from `os.wait4` (`ru_maxrss`). torch {torch.__version__}, "
            f"{args.threads} threads, Python {platform.python_version()}, {platform.machine()}, "
            f"on {time.strftime('%Y-%m-%d')}.",
            "",
            *table,
            "",
            verdict,
            "",
            f"The naive variant materialises the `[{args.texts}, {args.videos}, {WORDS}, {FRAMES}]` "
            f"token-similarity tensor ({naive_tensor_gb:.1f} GB) and a masked copy of it; the "
            "einsum-chunked one holds a 32 x 32 block of it at a time; the library's holds one "
            "block of about 100 x 100 pairs (a 16 MB `[a*L', T'*b]` matrix product). The einsum "
            f"ways do all {n_pairs * WORDS * FRAMES * DIM / 1e9:.0f} G multiply-adds, then mask "
            "and reduce the similarity tensor in separate passes. The library visits texts in "
            "length order, drops the word slots that are padding in every text of a block "
            "(about a third of the multiply-adds with 8-32 valid words of 32), zeroes the "
            "remaining padded tokens (so their similarities are exactly the 0 DRL's rule asks "
            "for, with no masked copy), hands each block to one GEMM and reduces it with two "
            "max-reductions and two weighted sums; the result equals the einsum's (largest "
            "difference above; `tests/test_heads.py` checks masks, odd sizes and gradients).",
            "",
            "Why the 5x target is not met: the naive einsum is itself one large float32 matrix "
            "product followed by memory passes, and an exact float32 method cannot skip the "
            "products of valid words with frames. The yardstick row (every slot's products, "
            "nothing else) is that floor for the padded layout; the library gets below it only "
            "by the padding it drops. Its speed-up over the naive einsum is therefore bounded "
            "by how much of the naive time is memory passes rather than products, which here "
            "leaves it at the figure above; lower precision would pass the target (bf16 "
            "matrix products ran about 10x faster than float32 in a probe on this CPU, which "
            "has AMX), but scores are kept in float32 (see \"Evaluation under bf16 "
            "autocast\").",
            "",
            load_note(load_start[0], load_end[0],
                      detail=f" (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})"),
        ])
        update_section(args.results, SECTION, body)
        logger.info("updated %s (%s)", args.results, SECTION)
    return 0 if ok and max_diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
