"""Reading a bundle: :class:`Bundle`, the one reader of a bundle's files.

Small things (``meta.json`` as :class:`~analysis.bundle.BundleMeta`, ``captions.json``) are read
by :meth:`Bundle.load`; big arrays load on first access, tensors as read-only memory maps
(:mod:`analysis.tensor_file`), so indexing rows reads only those rows.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.bundle.arrays import DRGIArrays, DRGIScores, Projections, Ranks, read_only
from analysis.bundle.errors import BundleError, StaleBundleError
from analysis.bundle.files import (
    CAPTIONS,
    DRGI_FILE,
    EMBEDDINGS,
    META,
    NEGATIVES,
    PROJECTION_KINDS,
    PROJECTIONS,
    RANKS,
    SIMILARITY,
    TEXT_FRAME,
    THUMBS,
    thumb_name,
)
from analysis.bundle.freshness import (
    BundleStatus,
    bundle_status,
    missing_reasons,
    resolve_data_root,
)
from analysis.bundle.memory import charge, ledger_bytes, measured_property
from analysis.bundle.meta import BundleMeta, SkippedVideo, read_json, read_meta
from analysis.ranked_negatives import RankedNegatives, negatives_from_arrays
from analysis.tensor_file import TensorFileError, memmap_tensor, read_header

if TYPE_CHECKING:
    from tvr.data.synthvtt import SplitMeta

logger = logging.getLogger(__name__)

_SPLIT_META = "_synthvtt_split_meta"  # instance attribute: (data root, SplitMeta)
_SHARED_SPLITS = 4  # aligned split metas kept for other bundles of the same rows
_shared_splits: OrderedDict[tuple, SplitMeta] = OrderedDict()
_shared_lock = threading.Lock()


def _shared_split_meta(root: Path, split: str, video_ids: Sequence[str],
                       captions: Sequence[str], text_to_video: np.ndarray) -> SplitMeta:
    """:func:`tvr.data.synthvtt.read_split_meta`, shared by the bundles of the same rows.

    Two runs exported on one split hold the same videos, captions and ``text_to_video``, so
    their alignment with the ground truth is the same read-only object: the second bundle
    gets the first's instead of aligning 59,800 captions again (~0.3–0.9 s). The key is the
    rows' digest and the data files' stamps (``(st_mtime_ns, st_size)``), so a rewritten
    ground truth is read again; the :data:`_SHARED_SPLITS` most recent are kept.
    """
    from tvr.data.synthvtt import DATA_FILE, META_FILE, read_split_meta

    digest = hashlib.blake2b(digest_size=16)
    for part in (video_ids, captions):
        digest.update("\0".join(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\1")
    digest.update(np.ascontiguousarray(text_to_video, dtype=np.int64).tobytes())
    stamps = []
    for name in (META_FILE, DATA_FILE):
        try:
            st = (root / name).stat()
            stamps.append((int(st.st_mtime_ns), int(st.st_size)))
        except OSError:
            stamps.append((-1, -1))  # read_split_meta names the missing file
    key = (str(root), split, len(video_ids), len(captions), digest.hexdigest(), tuple(stamps))
    with _shared_lock:
        meta = _shared_splits.get(key)
        if meta is not None:
            _shared_splits.move_to_end(key)
            return meta
    meta = read_split_meta(root, split, video_ids, captions, text_to_video)
    with _shared_lock:
        _shared_splits[key] = meta
        while len(_shared_splits) > _SHARED_SPLITS:
            _shared_splits.popitem(last=False)
    return meta


def _unreadable(path: Path, exc: BaseException) -> BundleError:
    return BundleError(
        f"cannot read bundle file {path}: {exc} (truncated or corrupt; re-export the bundle "
        "with --force)"
    )


class Bundle:
    """A loaded analysis bundle. Read-only: every numpy array has ``writeable=False``.

    Small things are read by :meth:`load`; big arrays load on first access (cached).

    Attributes (loaded eagerly):
        path (Path): the bundle folder; run_dir (Path): the run folder (its grandparent).
        info (BundleMeta): ``meta.json``, typed; meta (dict): the same as JSON
            (``info.to_json()``).
        status (BundleStatus | None): the freshness check done by :meth:`load`.
        run_name, dataset, split, head (str); factorized, has_drgi (bool).
        num_texts (Nt), num_videos (Nv), num_frames (T), max_words (L), embed_dim (D) (int).
        metrics (dict[str, float]): ``tvr.metrics.retrieval_metrics`` of the split.
        skipped (list[SkippedVideo]): videos of the split the export left out (failed to
            decode), with why; split_num_videos (int): videos in the split, skipped included.
        captions (list[str]): ``[Nt]`` caption texts.
        text_to_video (ndarray): ``[Nt]`` int64 column of each caption's video.
        caption_index (ndarray): ``[Nt]`` int64 position of each caption in the source's split.
        word_labels (list[list[str]]): per caption, one readable label per valid token
            (``[SOT]``, words/BPE pieces, ``[EOT]``); ``len == text_mask[i].sum()``.
        video_ids (list[str]): ``[Nv]``; video_paths (list[str]): relative to the data root or
            absolute; video_windows (list[tuple[float | None, float | None]]): clip windows (s).
        frame_timestamps (ndarray): ``[Nv, T]`` float64 seconds of the sampled frames, NaN on
            padding.
        thumb_counts (ndarray): ``[Nv]`` frames in each thumbnail strip; thumb_size (int):
            the side of one thumbnail frame in pixels.

    Lazy attributes:
        sim: ``[Nt, Nv]`` float32 similarity (cosine scale), memory-mapped.
        ranks: :class:`Ranks`.
        text_pooled ``[Nt, D]``, video_pooled ``[Nv, D]`` (float32), text_tokens ``[Nt, L, D]``,
        video_tokens ``[Nv, T, D]`` (float16 or float32 as exported:
        ``info.export_params.token_dtype``; :meth:`text_features` and
        :meth:`video_features` return float32); text_mask ``[Nt, L]``, video_mask ``[Nv, T]``
        (bool); text_ids ``[Nt, L]`` int64; text_weights ``[Nt, L]`` / video_weights
        ``[Nv, T]`` float32 or None (heads with token weights, e.g. WTI).
        text_frame_weights: ``[Nt, T]`` float32, each caption's weights over its own video's
            frames (rows sum to 1 over valid frames; ``meta["text_frame"]`` says how).
        drgi: :class:`DRGIArrays` or None (run without DRGI).
        projections: :class:`Projections` (methods may be empty).

    Example:
        >>> b = Bundle.load("checkpoints/demo-drgi/analysis/synthvtt-test")
        >>> b.sim.shape, b.ranks.t2v[:5], b.words(0), b.thumbnail(3).size
    """

    def __init__(
        self,
        path: Path,
        meta: BundleMeta,
        captions: dict[str, Any],
        status: BundleStatus | None = None,
        data_root: str | Path | None = None,
    ) -> None:
        self.path = path
        self.run_dir = path.parent.parent
        self.info = meta
        self.meta = meta.to_json()
        self.status = status
        self._data_root = data_root
        self.run_name: str = meta.run.name
        self.dataset: str = meta.dataset
        self.split: str = meta.split
        self.head: str = meta.head
        self.factorized: bool = meta.factorized
        self.has_drgi: bool = meta.has_drgi
        self.num_texts: int = meta.num_texts
        self.num_videos: int = meta.num_videos
        self.num_frames: int = meta.num_frames
        self.max_words: int = meta.max_words
        self.embed_dim: int = meta.embed_dim
        self.metrics: dict[str, float] = dict(meta.metrics)
        self.skipped: list[SkippedVideo] = meta.skipped_list
        self.split_num_videos: int = meta.split_videos
        self.thumb_size: int = meta.thumb_index.frame_width
        self.thumb_counts = read_only(np.asarray(meta.thumb_index.counts, dtype=np.int64))
        try:
            self.captions: list[str] = list(captions["captions"])
            self.text_to_video = read_only(
                np.asarray(captions["text_to_video"], dtype=np.int64)
            )
            self.caption_index = read_only(
                np.asarray(captions["caption_index"], dtype=np.int64)
            )
            self.word_labels: list[list[str]] = [list(w) for w in captions["word_labels"]]
            self.video_ids: list[str] = list(captions["video_ids"])
            self.video_paths: list[str] = list(captions["video_paths"])
            self.video_windows: list[tuple[float | None, float | None]] = [
                (w[0], w[1]) for w in captions["video_windows"]
            ]
            times = np.asarray(
                [[np.nan if t is None else t for t in row] for row in captions["frame_timestamps"]],
                dtype=np.float64,
            ).reshape(self.num_videos, self.num_frames)
            self.frame_timestamps = read_only(times)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"bundle {path}: malformed {CAPTIONS} ({type(exc).__name__}: {exc})"
            ) from None
        if len(self.captions) != self.num_texts or len(self.video_ids) != self.num_videos:
            raise BundleError(
                f"bundle {path}: {CAPTIONS} lists {len(self.captions)} captions and "
                f"{len(self.video_ids)} videos, {META} says {self.num_texts} and {self.num_videos}"
            )
        charge(self, "eager", dict(vars(self)))  # lazy attributes charge their own share

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        bundle_dir: str | Path,
        *,
        check: bool = True,
        allow_stale: bool = False,
        data_root: str | Path | None = None,
    ) -> Bundle:
        """Open a bundle folder.

        Args:
            bundle_dir: ``<run>/analysis/<dataset>-<split>``.
            check: verify freshness with :func:`bundle_status` (hashes the checkpoint and the
                dataset's annotation files; memoised per process).
            allow_stale: return a stale bundle (its ``status`` names what changed) instead of
                raising.
            data_root: the dataset root, when it is not where the export found it.

        Raises:
            BundleError: no complete bundle there, or malformed files.
            StaleBundleError: the checkpoint or dataset changed (unless ``allow_stale``).
        """
        path = Path(bundle_dir)
        status = None
        if check:
            status = bundle_status(path, data_root)
            if status.state == "missing":
                raise BundleError(f"no usable bundle at {path}: {'; '.join(status.reasons)}")
            if status.state == "stale":
                if not allow_stale:
                    raise StaleBundleError(path, status.reasons)
                logger.warning("using stale bundle %s: %s", path, "; ".join(status.reasons))
        else:
            _, missing = missing_reasons(path)
            if missing:
                raise BundleError(f"no usable bundle at {path}: {'; '.join(missing)}")
        meta = read_meta(path)
        captions = read_json(path / CAPTIONS)
        return cls(path, meta, captions, status, data_root)

    def __repr__(self) -> str:
        state = self.status.state if self.status else "unchecked"
        return (
            f"Bundle({self.run_name!r}, {self.dataset}-{self.split}, head={self.head}, "
            f"Nt={self.num_texts}, Nv={self.num_videos}, drgi={self.has_drgi}, {state})"
        )

    def _file(self, name: str) -> Path:
        path = self.path / name
        if not path.is_file():
            raise BundleError(f"bundle {self.path}: {name} is missing")
        return path

    def _tensor(self, filename: str, key: str, optional: bool = False) -> np.ndarray | None:
        """A tensor of a safetensors file of the bundle as a read-only memory map: indexing
        rows reads only those rows (:mod:`analysis.tensor_file`)."""
        path = self._file(filename)
        try:
            arr = memmap_tensor(path, key)
        except (TensorFileError, OSError) as exc:
            raise _unreadable(path, exc) from None
        if arr is None:
            if optional:
                return None
            raise BundleError(f"bundle {self.path}: {filename} has no tensor {key!r}")
        return arr

    def _tensors(self, filename: str) -> dict[str, np.ndarray]:
        """Every tensor of a safetensors file of the bundle, as read-only memory maps."""
        path = self._file(filename)
        try:
            _, header = read_header(path)
        except (TensorFileError, OSError) as exc:
            raise _unreadable(path, exc) from None
        return {k: self._tensor(filename, k) for k in header}

    def _npz(self, filename: str) -> dict[str, np.ndarray]:
        path = self._file(filename)
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: read_only(data[k]) for k in data.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise _unreadable(path, exc) from None

    # ------------------------------------------------------------------ similarity and ranks
    @measured_property
    def sim(self) -> np.ndarray:
        """``[Nt, Nv]`` float32 cosine-scale similarity (read-only memory map)."""
        path = self._file(SIMILARITY)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise _unreadable(path, exc) from None
        if arr.shape != (self.num_texts, self.num_videos):
            raise BundleError(
                f"bundle {self.path}: {SIMILARITY} has shape {arr.shape}, expected "
                f"({self.num_texts}, {self.num_videos})"
            )
        return arr

    @measured_property
    def ranks(self) -> Ranks:
        """Per-query ranks of both directions (:class:`Ranks`)."""
        d = self._npz(RANKS)
        return Ranks(
            t2v=d["t2v"], v2t=d["v2t"], t2v_tied=d["t2v_tied"], v2t_tied=d["v2t_tied"],
            text_to_video=d["text_to_video"], v2t_any=d.get("v2t_any"),
            v2t_any_tied=d.get("v2t_any_tied"),
        )

    # ------------------------------------------------------------------ embeddings
    @measured_property
    def text_pooled(self) -> np.ndarray:
        """``[Nt, D]`` float32 pooled text features."""
        return self._tensor(EMBEDDINGS, "text_pooled")  # type: ignore[return-value]

    @measured_property
    def video_pooled(self) -> np.ndarray:
        """``[Nv, D]`` float32 pooled video features."""
        return self._tensor(EMBEDDINGS, "video_pooled")  # type: ignore[return-value]

    @measured_property
    def text_tokens(self) -> np.ndarray:
        """``[Nt, L, D]`` word features (padding included), float16 or float32 as stored;
        cast the rows you compute with (``np.asarray(rows, np.float32)``)."""
        return self._tensor(EMBEDDINGS, "text_tokens")  # type: ignore[return-value]

    @measured_property
    def text_mask(self) -> np.ndarray:
        """``[Nt, L]`` bool, True on SOT..EOT."""
        return self._tensor(EMBEDDINGS, "text_mask")  # type: ignore[return-value]

    @measured_property
    def text_ids(self) -> np.ndarray:
        """``[Nt, L]`` int64 token ids (pad id on padding)."""
        return self._tensor(EMBEDDINGS, "text_ids")  # type: ignore[return-value]

    @measured_property
    def video_tokens(self) -> np.ndarray:
        """``[Nv, T, D]`` frame features (padding included), float16 or float32 as stored."""
        return self._tensor(EMBEDDINGS, "video_tokens")  # type: ignore[return-value]

    @measured_property
    def video_mask(self) -> np.ndarray:
        """``[Nv, T]`` bool, True on real frames."""
        return self._tensor(EMBEDDINGS, "video_mask")  # type: ignore[return-value]

    @measured_property
    def text_weights(self) -> np.ndarray | None:
        """``[Nt, L]`` float32 token weights of the head (WTI), or None."""
        return self._tensor(EMBEDDINGS, "text_weights", optional=True)

    @measured_property
    def video_weights(self) -> np.ndarray | None:
        """``[Nv, T]`` float32 frame weights of the head (WTI), or None."""
        return self._tensor(EMBEDDINGS, "video_weights", optional=True)

    def text_features(self, index: Sequence[int] | np.ndarray | slice | None = None):
        """Stored text features as ``tvr`` :class:`~tvr.models.features.TokenFeatures`
        (CPU float32 tensors), ready for the run's ``head.score`` against new queries.

        Shapes:
            -> tokens ``[n, L, D]``, mask ``[n, L]``, pooled ``[n, D]``, weights ``[n, L]``
        """
        return self._features("text", index)

    def video_features(self, index: Sequence[int] | np.ndarray | slice | None = None):
        """Stored video features as :class:`~tvr.models.features.TokenFeatures` (see
        :meth:`text_features`).

        Shapes:
            -> tokens ``[n, T, D]``, mask ``[n, T]``, pooled ``[n, D]``, weights ``[n, T]``
        """
        return self._features("video", index)

    def _features(self, side: str, index: Any):
        import torch

        from tvr.models.features import TokenFeatures

        sel = slice(None) if index is None else index

        def t(arr: np.ndarray | None) -> torch.Tensor | None:
            if arr is None:
                return None
            rows = np.asarray(arr)[sel]
            return torch.tensor(rows.astype(np.float32) if rows.dtype == np.float16 else rows)

        return TokenFeatures(
            tokens=t(getattr(self, f"{side}_tokens")),
            mask=t(getattr(self, f"{side}_mask")).long(),  # type: ignore[union-attr]
            pooled=t(getattr(self, f"{side}_pooled")),
            weights=t(getattr(self, f"{side}_weights")),
        )

    # ------------------------------------------------------------------ interactions
    @measured_property
    def text_frame_weights(self) -> np.ndarray:
        """``[Nt, T]`` float32 text-to-frame weights over each caption's ground-truth video."""
        path = self._file(TEXT_FRAME)
        try:
            return read_only(np.load(path, allow_pickle=False))
        except (ValueError, OSError, EOFError) as exc:
            raise _unreadable(path, exc) from None

    @measured_property
    def drgi(self) -> DRGIArrays | None:
        """DRGI attention and discriminator scores (:class:`DRGIArrays`), None without DRGI.

        Every array is a read-only memory map (the caption attention ``[Nt, H, L, L]`` is
        ~190 MB at 59,800 captions; a page reads one caption's rows)."""
        if not self.has_drgi:
            return None
        d = self._tensors(DRGI_FILE)

        def scores(prefix: str) -> DRGIScores:
            return DRGIScores(**{f: d[f"{prefix}_{f}"] for f in DRGIScores.__dataclass_fields__})

        return DRGIArrays(
            text_attention=d["text_attention"],
            video_attention=d["video_attention"],
            text_node_mask=d["text_node_mask"],
            video_node_mask=d["video_node_mask"],
            text_queries=scores("text_queries"),
            video_queries=scores("video_queries"),
        )

    @measured_property
    def negatives(self) -> RankedNegatives | None:
        """Each caption's hardest negatives as the export ranked them
        (:class:`analysis.ranked_negatives.RankedNegatives`, read-only memory maps), or None
        for a bundle exported before they were stored
        (:func:`analysis.ranked_negatives.bundle_negatives` then ranks them from :attr:`sim`)."""
        if not self.info.has_negatives:
            return None
        try:
            negatives = negatives_from_arrays(self._tensors(NEGATIVES), self.num_videos)
        except ValueError as exc:
            raise BundleError(f"bundle {self.path}: {NEGATIVES}: {exc}") from None
        if negatives.num_texts != self.num_texts:
            raise BundleError(f"bundle {self.path}: {NEGATIVES} ranks {negatives.num_texts} "
                              f"captions, {META} says {self.num_texts}")
        return negatives

    @measured_property
    def projections(self) -> Projections:
        """The 2-D maps (:class:`Projections`)."""
        fitted = self.info.projections.methods if self.info.projections else {}
        methods = tuple(fitted)
        if not methods:
            empty = np.zeros((0, 2), dtype=np.int64)
            return Projections((), {}, read_only(empty), read_only(empty.copy()), {})
        d = self._npz(PROJECTIONS)
        coords = {(m, k): d[f"{m}_{k}"] for m in methods for k in PROJECTION_KINDS}
        rows = None
        if self.info.projections.fitted is not None:
            rows = {k: d[f"fit_{k}"] for k in PROJECTION_KINDS}
        return Projections(methods, coords, d["word_ids"], d["frame_ids"], dict(fitted), rows)

    # ------------------------------------------------------------------ words and thumbnails
    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk: ``{"total", "similarity", "embeddings", "thumbs"}`` (the sizes
        ``meta.json`` records, plus the thumbnail strips)."""
        sizes = {k: int(v) for k, v in self.info.files.items() if k != THUMBS}
        thumbs = sum(self.thumbnail_path(v).stat().st_size for v in range(self.num_videos))
        return {"total": sum(sizes.values()) + thumbs, "similarity": sizes.get(SIMILARITY, 0),
                "embeddings": sizes.get(EMBEDDINGS, 0), "thumbs": thumbs}

    def resident_bytes(self) -> int:
        """Bytes of process memory this bundle holds now: what was read into memory (captions,
        ranks, maps, ...; grows as lazy attributes load); memory-mapped tensors count nothing.

        Measured once per part (:func:`analysis.bundle.memory.resident_bytes`): the eager
        attributes by :meth:`load`, each lazy attribute when it first loads; this call only
        adds the recorded figures, so a cache may ask on every hit."""
        return ledger_bytes(self)

    def release_mapped_pages(self) -> int:
        """Drop the pages of the bundle's memory-mapped files from this process's resident set
        (:func:`analysis.bundle.memory.release_pages`): a scan of the whole ``[Nt, Nv]``
        similarity (715 MB at 59,800 x 2,990) leaves every page mapped otherwise. The files
        stay in the page cache; later reads map the rows they touch again. Returns how many
        mappings were released (those loaded so far)."""
        from analysis.bundle.memory import release_pages

        loaded = [v for v in self.__dict__.values() if isinstance(v, np.ndarray)]
        for part in ("drgi", "negatives"):
            value = self.__dict__.get(part)
            if value is not None:
                loaded += [v for v in vars(value).values() if isinstance(v, np.ndarray)]
        return release_pages(loaded)

    def words(self, caption: int) -> list[str]:
        """Readable labels of the valid tokens of caption ``caption`` (``[SOT] ... [EOT]``)."""
        return list(self.word_labels[self._check_index(caption, self.num_texts, "caption")])

    @staticmethod
    def _check_index(i: int, n: int, what: str) -> int:
        if not isinstance(i, int | np.integer) or not -n <= int(i) < n:
            raise IndexError(f"{what} index {i!r} out of range for {n} {what}s")
        return int(i) % n

    def thumbnail_path(self, video: int) -> Path:
        """The JPEG strip of video ``video``."""
        v = self._check_index(video, self.num_videos, "video")
        return self._file(thumb_name(v))

    def thumbnail(self, video: int, *, as_array: bool = False):
        """The frame strip of video ``video``: a PIL image, or a uint8 array
        ``[S, n * S, 3]`` with ``as_array`` (S = ``thumb_size``, n = ``thumb_counts[video]``)."""
        from PIL import Image

        with Image.open(self.thumbnail_path(video)) as im:
            image = im.convert("RGB")
            image.load()
        if as_array:
            return read_only(np.asarray(image))
        return image

    def thumbnail_frames(self, video: int) -> np.ndarray:
        """The sampled frames of video ``video`` as uint8 ``[n, S, S, 3]``."""
        strip = np.asarray(self.thumbnail(video, as_array=True))
        s = self.thumb_size
        n = strip.shape[1] // s
        return read_only(np.stack([strip[:, i * s : (i + 1) * s] for i in range(n)]))

    # ------------------------------------------------------------------ SynthVTT
    @property
    def data_root(self) -> Path | None:
        """The dataset root (as passed to :meth:`load` or recorded), None when not found."""
        return resolve_data_root(self.info, self._data_root)

    def synthvtt_meta(self) -> SplitMeta | None:
        """SynthVTT ground truth aligned with this bundle's captions and videos
        (:func:`tvr.data.synthvtt.read_split_meta`, the one reader of the format), read once
        per bundle (~4 s at 59,800 captions) and charged to its resident bytes; bundles of
        the same rows (two runs exported on one split) share one (:func:`_shared_split_meta`).

        Returns None when the dataset is not SynthVTT.

        Raises:
            FileNotFoundError: the dataset root or its meta file is not found.
            tvr.data.sources.SourceError: the meta breaks the format or lacks a bundle video
                (the bundle was exported from another dataset); names the file.
        """
        if self.dataset != "synthvtt":
            return None
        root = self.data_root
        if root is None:
            raise FileNotFoundError(
                f"SynthVTT root {self.info.data_root} not found; pass data_root to "
                f"Bundle.load"
            )
        cached = self.__dict__.get(_SPLIT_META)
        if cached is not None and cached[0] == root:
            return cached[1]
        meta = _shared_split_meta(root, self.split, self.video_ids, self.captions,
                                  self.text_to_video)
        if cached is None:  # the data root cannot change under a loaded bundle: read once
            self.__dict__[_SPLIT_META] = (root, meta)
            charge(self, _SPLIT_META, meta)
        return meta
