"""DRGI's parameter budget at CLIP ViT-B/32 sizes (methods.md §9.5).

Builds a randomly initialised ViT-B/32 CLIP (151.3M parameters), a seqTransf head and every
DRGI variant, counts trainable parameters, prints a table and writes the
``## DRGI parameter budget`` section of benchmarks/RESULTS.md.

    python benchmarks/drgi_parameters.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tvr.config import ClipConfig, load_config  # noqa: E402
from tvr.models.backbone import HFClipEncoder  # noqa: E402
from tvr.models.retriever import Retriever  # noqa: E402

VARIANTS = {
    "tokens, cross (default)": [],
    "tokens, intra": ["drgi.mode=intra"],
    "tokens, PReLU": ["drgi.activation=prelu"],
    "factors (K=8 x 64, 8 heads)": ["drgi.nodes=factors"],
}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def main() -> int:
    encoder = HFClipEncoder.from_config(
        ClipConfig(), vocab_size=49408, bos_id=49406, eos_id=49407, pad_id=49407,
        image_size=224, max_positions=77,
    )
    clip = count(encoder)
    rows = []
    for name, overrides in VARIANTS.items():
        cfg = load_config(None, ["model.head=seqtransf", "drgi.enable=true", *overrides])
        model = Retriever(cfg, encoder)
        drgi = count(model.objectives["drgi"])
        head = count(model.head)
        rows.append((name, drgi, 100 * drgi / clip, 100 * drgi / (clip + head)))
        inference = model.for_inference()
        assert "drgi" not in inference.objectives
    lines = [
        "Command: `python benchmarks/drgi_parameters.py` (random weights; counts are exact).",
        "",
        f"CLIP ViT-B/32 backbone: {clip:,} parameters; seqTransf head: {head:,}.",
        "",
        "| DRGI variant | parameters | % of CLIP | % of CLIP + seqTransf | at inference |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {n} | {p:,} | {a:.4f}% | {b:.4f}% | dropped (0) |" for n, p, a, b in rows]
    text = "\n".join(lines)
    print(text)
    from benchmarks.results import update_section

    update_section(REPO / "benchmarks" / "RESULTS.md", "## DRGI parameter budget", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
