"""``python -m tvr.data.synthvtt``: generate SynthVTT from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tvr.data.synthvtt.vocabulary import FAMILY_SIZE
from tvr.data.synthvtt.writing import generate

__all__ = ["main"]

logger = logging.getLogger("tvr.data.synthvtt")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tvr.data.synthvtt",
        description="Generate the SynthVTT benchmark in the MSR-VTT layout.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("data/synthvtt"),
        help="dataset folder (default: data/synthvtt)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--train", type=int, default=1500, help="train videos (default: 1500)")
    p.add_argument("--val", type=int, default=500, help="val videos (default: 500)")
    p.add_argument("--test", type=int, default=500, help="test videos (default: 500)")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels, even (default: 64)")
    p.add_argument("--fps", type=int, default=8, help="frames per second (default: 8)")
    p.add_argument(
        "--background-captions", action="store_true", help="let captions name the background"
    )
    p.add_argument(
        "--family-size",
        type=int,
        nargs=2,
        metavar=("LO", "HI"),
        default=list(FAMILY_SIZE),
        help=f"videos per family, one edit apart (default: {FAMILY_SIZE[0]} {FAMILY_SIZE[1]}; "
        "larger is harder)",
    )
    p.add_argument(
        "--test-captions",
        type=int,
        default=1,
        metavar="K",
        help="captions per test video (default: 1, MSR-VTT 1k-A style; 20: MSR-VTT full)",
    )
    p.add_argument("--workers", type=int, default=2, help="encoding processes (default: 2)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing SynthVTT dataset with other parameters",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 also when the dataset was already there)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        summary = generate(
            args.out,
            seed=args.seed,
            n_train=args.train,
            n_val=args.val,
            n_test=args.test,
            size=args.size,
            fps=args.fps,
            background_captions=args.background_captions,
            family_size=tuple(args.family_size),
            test_captions=args.test_captions,
            workers=args.workers,
            force=args.force,
            progress=not args.quiet,
        )
    except (ValueError, FileExistsError) as e:
        logger.error("%s", e)
        return 1
    if summary.skipped:
        print(f"{summary.out}: already complete with these parameters; nothing to do")
    else:
        print(
            f"{summary.out}: {sum(summary.videos.values())} videos {summary.videos}, "
            f"{sum(summary.captions.values())} captions, {summary.seconds:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
