"""The names of a bundle's files and folders: the one place that spells them.

Only :mod:`analysis.bundle` opens bundle files by these names (``tests/test_layers.py``
checks it); other code goes through :class:`~analysis.bundle.Bundle`,
:func:`~analysis.bundle.read_meta` and :class:`~analysis.bundle.BundleWriter`.
"""

from __future__ import annotations

from pathlib import Path

# bumped when the layout changes; other formats are stale (2: DRGI diagnostics in meta)
BUNDLE_FORMAT = 2
ANALYSIS_DIR = "analysis"  # bundles live in <run>/analysis/
META = "meta.json"
CAPTIONS = "captions.json"
SOURCES = "sources.json"
EMBEDDINGS = "embeddings.safetensors"
SIMILARITY = "similarity.npy"
RANKS = "ranks.npz"
TEXT_FRAME = "text_frame.npy"
DRGI_FILE = "drgi.safetensors"
NEGATIVES = "negatives.safetensors"
PROJECTIONS = "projections.npz"
THUMBS = "thumbs"
THUMB_PATTERN = f"{THUMBS}/{{video}}.jpg"  # as recorded in meta.json's thumb_index

#: every file or folder name a bundle may hold
BUNDLE_FILES: tuple[str, ...] = (
    META, CAPTIONS, SOURCES, EMBEDDINGS, SIMILARITY, RANKS, TEXT_FRAME, DRGI_FILE, NEGATIVES,
    PROJECTIONS, THUMBS,
)
#: the kinds of points of each 2-D map (keys ``"<method>_<kind>"`` of ``projections.npz``)
PROJECTION_KINDS: tuple[str, ...] = ("words", "frames", "texts", "videos")


def bundle_dir_for(run_dir: str | Path, dataset: str, split: str) -> Path:
    """Where the bundle of ``run_dir`` on ``dataset``/``split`` lives."""
    return Path(run_dir) / ANALYSIS_DIR / f"{dataset}-{split}"


def thumb_name(video: int) -> str:
    """The bundle-relative path of video ``video``'s thumbnail strip (``thumbs/<v>.jpg``)."""
    return THUMB_PATTERN.format(video=int(video))
