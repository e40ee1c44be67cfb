"""``python -m tvr.demo [--train | --backbone] [--data-root DIR] [--checkpoints DIR] [--quiet]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import tvr.demo
from tvr.demo.runs import BACKBONE, CHECKPOINTS, CONFIG_DIR, DATA_ROOT, ensure_backbone, run_demo

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tvr.demo", description=tvr.demo.__doc__.split("\n")[0])
    p.add_argument("--train", action="store_true",
                   help="retrain the backbone and both runs from scratch (replaces them)")
    p.add_argument("--backbone", action="store_true",
                   help="only provide the dataset and checkpoints/demo-backbone (stage 1), which "
                        "the configs/synthvtt/<method>.yaml runs start from")
    p.add_argument("--data-root", type=Path, default=DATA_ROOT,
                   help=f"SynthVTT folder (default: {DATA_ROOT})")
    p.add_argument("--checkpoints", type=Path, default=CHECKPOINTS,
                   help=f"folder of the run folders (default: {CHECKPOINTS})")
    p.add_argument("--configs", type=Path, default=CONFIG_DIR,
                   help=f"folder of demo-base.yaml and demo-drgi.yaml (default: {CONFIG_DIR})")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.train and args.backbone:
        log.error("--train and --backbone exclude each other")
        return 2
    if args.backbone:
        built = ensure_backbone(data_root=args.data_root, checkpoints=args.checkpoints,
                                config_dir=args.configs, progress=not args.quiet)
        print(f"{'built' if built else 'present'}: {Path(args.checkpoints) / BACKBONE}")
        return 0
    try:
        result = run_demo(data_root=args.data_root, checkpoints=args.checkpoints,
                          config_dir=args.configs, retrain=args.train, progress=not args.quiet)
    except (FileExistsError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    if not result["generated"] and not result["trained"]:
        print(f"demo runs present in {args.checkpoints} and SynthVTT in {args.data_root}; "
              "nothing to do (--train retrains them)")
        return 0
    if result["generated"]:
        print(f"generated SynthVTT in {args.data_root}")
    if result["trained"]:
        print("trained: " + ", ".join(result["trained"]))
        print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result["seconds"].items()))
    for name, m in result["metrics"].items():
        print(f"{name}: t2v R@1 {m['t2v/R@1']:.1f}  R@5 {m['t2v/R@5']:.1f}  | "
              f"v2t R@1 {m['v2t/R@1']:.1f}  R@5 {m['v2t/R@5']:.1f}  "
              f"({m['num_texts']} texts x {m['num_videos']} videos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
