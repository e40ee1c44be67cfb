"""SynthVTT one-edit siblings: how often the true video outranks each kind of sibling.

SynthVTT videos come in families: a base event list and siblings made by one edit each
(colour, shape, action, swap, drop, add; ``spec/synthvtt.md``). For every caption query and
every video of its ground truth's family that differs from it by exactly one edit (one of the
two is the family's base), the query counts a win when the true video scores strictly higher
than the sibling (ties lose, as in the metrics). Grouped by the edit, this says which
distinctions a model can make: an order-blind head loses the "swap" and "action" siblings.

    python -m analysis.siblings --run DIR [--split test] [--root data/synthvtt]

prints ``{edit: {"wins": k, "pairs": n, "rate": k / n}}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tvr.data.synthvtt import MetaVideo

BASE_EDIT = "none"  # the family's base video


def sibling_outrank(
    sim: np.ndarray,
    text_to_video: Sequence[int],
    video_ids: Sequence[str],
    videos_meta: Mapping[str, MetaVideo],
) -> dict[str, dict[str, float]]:
    """Win rate of the true video over its one-edit siblings, per edit type.

    Args:
        sim: ``[Nt, Nv]`` scores of the split's captions (rows) and videos (columns).
        text_to_video: ``[Nt]`` column of each caption's true video.
        video_ids: ``[Nv]`` the columns' video ids.
        videos_meta: the typed SynthVTT meta's ``videos`` (id -> :class:`MetaVideo`, read with
            :func:`tvr.data.synthvtt.read_meta`; ``family`` and ``edit.type`` are used).

    Returns:
        ``{edit type: {"wins", "pairs", "rate"}}`` plus ``"all"``; edit types without a pair
        are absent.

    Raises:
        KeyError: a video id missing from the meta (names it).
    """
    sim = np.asarray(sim)
    col = {vid: j for j, vid in enumerate(video_ids)}
    families: dict[int, list[str]] = {}
    for vid in video_ids:
        if vid not in videos_meta:
            raise KeyError(f"video {vid!r} is not in the SynthVTT meta")
        families.setdefault(videos_meta[vid].family, []).append(vid)
    wins: dict[str, int] = {}
    pairs: dict[str, int] = {}
    for q, g in enumerate(np.asarray(text_to_video, dtype=np.int64)):
        gid = video_ids[int(g)]
        g_edit = videos_meta[gid].edit.type
        for sid in families[videos_meta[gid].family]:
            if sid == gid:
                continue
            s_edit = videos_meta[sid].edit.type
            if BASE_EDIT not in (g_edit, s_edit):
                continue  # two edits apart
            kind = s_edit if g_edit == BASE_EDIT else g_edit
            won = int(sim[q, int(g)] > sim[q, col[sid]])
            for key in (kind, "all"):
                wins[key] = wins.get(key, 0) + won
                pairs[key] = pairs.get(key, 0) + 1
    return {k: {"wins": wins[k], "pairs": pairs[k], "rate": wins[k] / pairs[k]} for k in pairs}


def run_siblings(run_dir: str | Path, *, split: str = "test", root: str | None = None,
                 progress: bool = False) -> dict[str, dict[str, float]]:
    """:func:`sibling_outrank` of a run on a SynthVTT split (embeds the split once)."""
    from tvr.checkpoint import load_pretrained
    from tvr.data.sources import load_split
    from tvr.data.synthvtt import read_meta
    from tvr.evaluate import evaluate_model

    model, tokenizer, cfg = load_pretrained(Path(run_dir))
    data_root = root or cfg.data.root
    records = load_split("synthvtt", data_root, split)
    _, emb = evaluate_model(model, tokenizer, cfg, records, dataset="synthvtt", split=split,
                            progress=progress)
    return sibling_outrank(emb.sim, emb.text_to_video, emb.video_ids,
                           read_meta(data_root).videos)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.siblings",
                                description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--root", help="SynthVTT root (default: the run's data.root)")
    args = p.parse_args(argv)
    print(json.dumps(run_siblings(args.run, split=args.split, root=args.root), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
