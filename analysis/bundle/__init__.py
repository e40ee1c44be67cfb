"""Analysis bundles: the saved artefacts of one run on one dataset split, written and read here.

A bundle is the folder ``<run>/analysis/<dataset>-<split>/`` written by
:mod:`analysis.export` (``python -m analysis.export``) through :class:`BundleWriter`. The app
reads bundles only through :class:`Bundle`; it never runs the video tower. This package is the
only code that opens bundle files by name (``tests/test_layers.py`` checks it).

Modules: :mod:`~analysis.bundle.files` (the file names), :mod:`~analysis.bundle.meta` (the
typed, versioned :class:`BundleMeta` of ``meta.json``), :mod:`~analysis.bundle.writer`,
:mod:`~analysis.bundle.reader` (:class:`Bundle`), :mod:`~analysis.bundle.arrays` (what the
reader returns), :mod:`~analysis.bundle.hashing` and :mod:`~analysis.bundle.freshness`
(content hashes, :func:`bundle_status`, :func:`find_bundles`), :mod:`~analysis.bundle.synthvtt`
(SynthVTT ground truth aligned with a bundle).

Files (N_t captions, N_v videos, L words, T frames, D feature width; ``[..]`` are shapes)::

    meta.json               run, dataset, split, head, metrics, hashes, parameters, file list,
                            the videos the export skipped (``skipped``: id, path, reason,
                            number of captions dropped with it) and the split's full sizes
                            (:class:`BundleMeta`)
    captions.json           captions, their video, word labels, video ids/paths/windows,
                            frame timestamps (seconds, null on padding)
    sources.json            the dataset files the bundle was built from: sha256 of every
                            annotation file, size and mtime of every video of the split
    embeddings.safetensors  head-embedded features (what ``Retriever.encode_*`` return):
                            text_pooled [Nt,D], video_pooled [Nv,D], text_tokens [Nt,L,D],
                            text_mask [Nt,L] bool, text_ids [Nt,L] int64, video_tokens [Nv,T,D],
                            video_mask [Nv,T] bool, text_weights [Nt,L] / video_weights [Nv,T]
                            (only when the head attaches token weights, e.g. WTI); the token
                            features are float16 by default (export_params.token_dtype; absent
                            in older bundles: float32), the rest float32
    similarity.npy          [Nt,Nv] float32, cosine scale (the head's ``score``)
    ranks.npz               t2v [Nt], v2t [Nv], text_to_video [Nt], t2v_tied [Nt], v2t_tied [Nv]
                            (+ v2t_any, v2t_any_tied [Nv] when a video has several captions)
    text_frame.npy          [Nt,T] float32 text-to-frame weights over each caption's own video
    drgi.safetensors        runs with DRGI only: GAT attention and discriminator scores
    negatives.safetensors   each caption's K hardest negatives, best first (K = min(50, Nv-1)):
                            video_ids [Nt,K] int32, scores [Nt,K] float32, gt_videos [Nt],
                            gt_scores [Nt] float32, n_at_or_above [Nt] (negatives scoring >= the
                            ground truth); absent in bundles exported before it existed
                            (:mod:`analysis.ranked_negatives`)
    projections.npz         2-D maps: "<method>_<kind>" [N_kind,2] and word_ids / frame_ids
                            (+ fit_<kind> rows fitted, when a point budget sampled them)
    thumbs/<v>.jpg          one horizontal JPEG strip of the sampled frames of video v

**Freshness** (:mod:`~analysis.bundle.freshness`): a changed checkpoint or dataset makes a
bundle ``"stale"`` and :meth:`Bundle.load` refuses it (:class:`StaleBundleError` naming what
changed) unless ``allow_stale=True``; a bundle of another format is stale and its
``meta.json`` is refused with the command that re-exports it (:class:`BundleMetaError`).

**Writes** are atomic at the folder level (:mod:`~analysis.bundle.writer`): a hidden sibling
folder renamed into place, so a folder named ``<dataset>-<split>`` is always complete.
"""

from analysis.bundle.arrays import DRGIArrays, DRGIScores, Projections, Ranks
from analysis.bundle.errors import BundleError, BundleMetaError, StaleBundleError
from analysis.bundle.files import ANALYSIS_DIR, BUNDLE_FORMAT, PROJECTION_KINDS, bundle_dir_for
from analysis.bundle.freshness import (
    BundleInfo,
    BundleStatus,
    bundle_stamp,
    bundle_status,
    find_bundles,
    resolve_data_root,
)
from analysis.bundle.hashing import (
    ANNOTATION_SUFFIXES,
    CHECKPOINT_FILES,
    OPTIONAL_CHECKPOINT_FILES,
    checkpoint_hash,
    dataset_sources,
    file_sha256,
    path_digest,
    relative_video_path,
    scan_annotation_files,
    sources_digest,
    video_stats,
)
from analysis.bundle.meta import (
    BundleMeta,
    DatasetHash,
    DRGIMeta,
    ExportParams,
    ProjectionsMeta,
    RunRef,
    SkippedVideo,
    TextFrameMeta,
    ThumbIndex,
    meta_dict,
    read_meta,
)
from analysis.bundle.reader import Bundle
from analysis.bundle.writer import BundleWriter, clean_stale_work_dirs

__all__ = [
    "ANALYSIS_DIR", "ANNOTATION_SUFFIXES", "BUNDLE_FORMAT", "CHECKPOINT_FILES",
    "OPTIONAL_CHECKPOINT_FILES", "PROJECTION_KINDS", "Bundle", "BundleError", "BundleInfo",
    "BundleMeta", "BundleMetaError", "BundleStatus", "BundleWriter", "DRGIArrays", "DRGIMeta",
    "DRGIScores", "DatasetHash", "ExportParams", "Projections", "ProjectionsMeta", "Ranks",
    "RunRef", "SkippedVideo", "StaleBundleError", "TextFrameMeta",
    "ThumbIndex", "bundle_dir_for", "bundle_stamp", "bundle_status", "checkpoint_hash",
    "clean_stale_work_dirs", "dataset_sources", "file_sha256", "find_bundles", "meta_dict",
    "path_digest", "read_meta", "relative_video_path", "resolve_data_root",
    "scan_annotation_files", "sources_digest", "video_stats",
]
