"""SynthVTT ground truth aligned with a bundle's captions and videos (``spec/synthvtt.md``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.bundle.errors import BundleError

if TYPE_CHECKING:
    from analysis.bundle.reader import Bundle


@dataclass(frozen=True)
class SynthVTTSplit:
    """SynthVTT ground truth for the bundle's split (``spec/synthvtt.md``).

    Attributes:
        params: generator parameters (seed, sizes, fps, ...).
        vocabulary: colours, shapes, actions, backgrounds.
        videos: per bundle video (aligned with ``Bundle.video_ids``), its meta entry
            (background, family, edit, n_frames, events with frame ranges).
        captions: per bundle caption (aligned with ``Bundle.captions``), its meta entry
            (``events`` it mentions, ``background``, ``relevant`` video ids, plus ``sen_id``),
            or None when the caption is not in the meta file.
    """

    params: dict[str, Any]
    vocabulary: dict[str, Any]
    videos: list[dict[str, Any]]
    captions: list[dict[str, Any] | None]


def synthvtt_split(bundle: Bundle, root: Path) -> SynthVTTSplit:
    """The :class:`SynthVTTSplit` of ``bundle`` from the SynthVTT dataset at ``root``.

    Each bundle caption is matched to its sentence (same video, same text) of this split in
    ``MSRVTT_data.json``, then to its entry of ``synthvtt_meta.json``.

    Raises:
        BundleError: a bundle video has no entry in the meta file.
    """
    from tvr.data.synthvtt import load_meta

    meta = load_meta(root)
    data = json.loads((root / "MSRVTT_data.json").read_text(encoding="utf-8"))
    by_text: dict[tuple[str, str], list[int]] = {}
    for s in data.get("sentences", []):
        by_text.setdefault((str(s["video_id"]), str(s["caption"])), []).append(int(s["sen_id"]))
    captions: list[dict[str, Any] | None] = []
    for text, v in zip(bundle.captions, bundle.text_to_video, strict=True):
        ids = by_text.get((bundle.video_ids[int(v)], text))
        entry = None
        while ids:
            sid = ids.pop(0)
            c = meta["captions"].get(str(sid))
            if c is not None and c["split"] == bundle.split:
                entry = dict(c, sen_id=sid)
                break
        captions.append(entry)
    missing = [vid for vid in bundle.video_ids if vid not in meta["videos"]]
    if missing:
        raise BundleError(
            f"{root}: synthvtt_meta.json has no entry for bundle videos {missing[:5]}; the "
            f"bundle was exported from another dataset"
        )
    return SynthVTTSplit(
        params=dict(meta["params"]),
        vocabulary=dict(meta.get("vocabulary", {})),
        videos=[dict(meta["videos"][vid]) for vid in bundle.video_ids],
        captions=captions,
    )
