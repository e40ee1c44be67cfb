"""``meta.json``: the typed, versioned description of a bundle, read and written here only.

:class:`BundleMeta` is the one definition of the file. The export builds one and
:class:`~analysis.bundle.BundleWriter` writes ``to_json()``; :func:`read_meta` parses the file
with :meth:`BundleMeta.from_json`, which checks every field's type and names the file and the
field on bad input. ``from_json(x).to_json() == x`` for every ``meta.json`` the current export
writes (same keys, same order, same values), so a bundle's bytes do not depend on the typing.

Versions: ``format`` is :data:`~analysis.bundle.files.BUNDLE_FORMAT`. A ``meta.json`` of
another format is refused with the command that re-exports the bundle (:class:`BundleMetaError`).
Within format 2, keys added after the first format-2 exports are optional on read: an absent
key reads as None (``skipped``: derived from ``skipped_videos``) and is left out again on
write, so older format-2 bundles keep loading.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from analysis.bundle.errors import BundleError, BundleMetaError, reexport_hint
from analysis.bundle.files import BUNDLE_FORMAT, META, NEGATIVES, THUMB_PATTERN

T = TypeVar("T")
JSON = dict[str, Any]


class _Fields:
    """Typed access to one JSON object of ``meta.json``; errors name the file and the field."""

    def __init__(self, data: Any, where: str, prefix: str = "") -> None:
        self.where, self.prefix = where, prefix
        if not isinstance(data, Mapping):
            raise self.error(prefix.rstrip(".") or "(top level)", "a JSON object", data)
        self.data = data

    def error(self, key: str, expected: str, value: Any) -> BundleMetaError:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return BundleMetaError(f"{self.where}: field {key!r} is {shown}, expected {expected}")

    def get(self, key: str, check: Callable[[Any], bool], expected: str, *,
            optional: bool = False) -> Any:
        name = self.prefix + key
        if key not in self.data:
            if optional:
                return None
            raise BundleMetaError(f"{self.where}: field {name!r} is missing (expected {expected})")
        value = self.data[key]
        if not check(value):
            raise self.error(name, expected, value)
        return value

    def int(self, key: str, *, optional: bool = False) -> Any:
        return self.get(key, _is_int, "an integer", optional=optional)

    def num(self, key: str, *, optional: bool = False) -> Any:
        return self.get(key, _is_num, "a number", optional=optional)

    def str(self, key: str, *, optional: bool = False) -> Any:
        return self.get(key, lambda v: isinstance(v, str), "a string", optional=optional)

    def bool(self, key: str, *, optional: bool = False) -> Any:
        return self.get(key, lambda v: isinstance(v, bool), "true or false", optional=optional)

    def dict(self, key: str, *, optional: bool = False) -> Any:
        value = self.get(key, lambda v: isinstance(v, dict), "a JSON object", optional=optional)
        return None if value is None else dict(value)

    def list(self, key: str, *, optional: bool = False) -> Any:
        value = self.get(key, lambda v: isinstance(v, list), "a JSON list", optional=optional)
        return None if value is None else list(value)

    def sub(self, key: str, parse: Callable[[_Fields], T], *, optional: bool = False,
            nullable: bool = False) -> T | None:
        value = self.get(key, lambda v: isinstance(v, dict) or (nullable and v is None),
                         "a JSON object" + (" or null" if nullable else ""), optional=optional)
        return None if value is None else parse(_Fields(value, self.where, f"{self.prefix}{key}."))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _put(out: JSON, key: str, value: Any) -> None:
    """Set ``out[key]`` unless ``value`` is None (an optional key the bundle does not have)."""
    if value is not None:
        out[key] = value


@dataclass(frozen=True)
class RunRef:
    """The run a bundle was exported from: its folder ``name`` and absolute ``path``."""

    name: str
    path: str

    @classmethod
    def parse(cls, f: _Fields) -> RunRef:
        return cls(f.str("name"), f.str("path"))

    def to_json(self) -> JSON:
        return {"name": self.name, "path": self.path}


@dataclass(frozen=True)
class DRGIMeta:
    """The DRGI objective of the run and what the export measured with it.

    Attributes:
        mode, nodes: ``drgi.mode`` (cross / intra) and ``drgi.nodes`` (tokens / factors).
        hidden, heads: GAT width and heads.
        neg_topm_used: hard negatives per anchor in the bundle (1).
        mining: how the negatives were mined, in words.
        variant: the config's variant switches (attention, root, readout, ...).
        diagnostics: :func:`tvr.drgi_probe.information_report` on the split (None when not
            computed; NaN written as null).
    """

    mode: str
    nodes: str
    hidden: int
    heads: int
    neg_topm_used: int
    mining: str
    variant: dict[str, Any]
    diagnostics: dict[str, Any] | None

    @classmethod
    def parse(cls, f: _Fields) -> DRGIMeta:
        diagnostics = f.get("diagnostics", lambda v: v is None or isinstance(v, dict),
                            "a JSON object or null")
        return cls(f.str("mode"), f.str("nodes"), f.int("hidden"), f.int("heads"),
                   f.int("neg_topm_used"), f.str("mining"), f.dict("variant"), diagnostics)

    def to_json(self) -> JSON:
        return {
            "mode": self.mode, "nodes": self.nodes, "hidden": self.hidden, "heads": self.heads,
            "neg_topm_used": self.neg_topm_used, "mining": self.mining, "variant": self.variant,
            "diagnostics": self.diagnostics,
        }


@dataclass(frozen=True)
class SkippedVideo:
    """A video of the split the export left out (it failed to decode), with its captions.

    Attributes:
        video_id: the video's id.
        path: its file (relative to the data root, or absolute).
        reason: why it failed (the decoder's error; ``"not recorded"`` for older bundles).
        num_captions: captions that left the bundle with it (-1 when not recorded).
    """

    video_id: str
    path: str
    reason: str
    num_captions: int

    @classmethod
    def parse(cls, f: _Fields) -> SkippedVideo:
        num = f.int("num_captions", optional=True)
        return cls(f.str("video_id"), f.str("path", optional=True) or "", f.str("reason"),
                   -1 if num is None else num)

    def to_json(self) -> JSON:
        return {"video_id": self.video_id, "path": self.path, "reason": self.reason,
                "num_captions": self.num_captions}


@dataclass(frozen=True)
class TextFrameMeta:
    """How ``text_frame.npy`` was computed (:mod:`analysis.text_frame`)."""

    rule: str
    temperature: float
    inverse_temperature: float
    definition: str

    @classmethod
    def parse(cls, f: _Fields) -> TextFrameMeta:
        return cls(f.str("rule"), f.num("temperature"), f.num("inverse_temperature"),
                   f.str("definition"))

    def to_json(self) -> JSON:
        return {"rule": self.rule, "temperature": self.temperature,
                "inverse_temperature": self.inverse_temperature, "definition": self.definition}


@dataclass(frozen=True)
class ThumbIndex:
    """The thumbnail strips: ``path`` pattern, image ``format``, the side of one frame and the
    number of frames in each video's strip (``counts``, ``[Nv]``)."""

    path: str
    format: str
    frame_width: int
    frame_height: int
    counts: list[int]

    @classmethod
    def parse(cls, f: _Fields) -> ThumbIndex:
        counts = f.get("counts", lambda v: isinstance(v, list) and all(map(_is_int, v)),
                       "a list of integers")
        return cls(f.str("path"), f.str("format"), f.int("frame_width"), f.int("frame_height"),
                   list(counts))

    @classmethod
    def jpeg_strips(cls, size: int, counts: list[int]) -> ThumbIndex:
        """The index of the export's JPEG strips (``thumbs/<v>.jpg``) of ``size`` px frames."""
        return cls(THUMB_PATTERN, "jpeg", size, size, counts)

    def to_json(self) -> JSON:
        return {"path": self.path, "format": self.format, "frame_width": self.frame_width,
                "frame_height": self.frame_height, "counts": self.counts}


@dataclass(frozen=True)
class ProjectionsMeta:
    """The 2-D maps: ``methods`` ``{method: {"method", "params", "versions", "seconds",
    "placement"}}`` (empty without maps), and with maps the ``layout`` in words and the point
    count of each kind (``kinds``).

    With a point budget (``budget``, None: every point was fitted), ``fitted`` is the number of
    points of each kind the maps were fitted on (a deterministic stratified sample whose rows
    are ``fit_<kind>`` of ``projections.npz``); the other points were placed on the fitted map
    as each method's ``placement`` says (``"transform"``: PCA's own projection; ``"knn"``:
    :class:`analysis.projection.PointPlacer`; ``"fit"``: every point was fitted; absent in
    older bundles, which fitted every point).
    """

    methods: dict[str, Any]
    layout: str | None = None
    kinds: dict[str, int] | None = None
    budget: int | None = None
    fitted: dict[str, int] | None = None

    @classmethod
    def parse(cls, f: _Fields) -> ProjectionsMeta:
        return cls(f.dict("methods"), f.str("layout", optional=True),
                   f.dict("kinds", optional=True), f.int("budget", optional=True),
                   f.dict("fitted", optional=True))

    @property
    def sampled(self) -> bool:
        """True when some points were placed rather than fitted."""
        return self.fitted is not None and self.kinds is not None and self.fitted != self.kinds

    def to_json(self) -> JSON:
        out: JSON = {}
        _put(out, "layout", self.layout)
        _put(out, "kinds", self.kinds)
        _put(out, "budget", self.budget)
        _put(out, "fitted", self.fitted)
        out["methods"] = self.methods
        return out


@dataclass(frozen=True)
class DatasetHash:
    """Digests of ``sources.json`` (:func:`analysis.bundle.sources_digest`)."""

    digest: str
    annotations_digest: str
    videos_digest: str
    num_annotation_files: int
    num_videos: int

    @classmethod
    def parse(cls, f: _Fields) -> DatasetHash:
        return cls(f.str("digest"), f.str("annotations_digest"), f.str("videos_digest"),
                   f.int("num_annotation_files"), f.int("num_videos"))

    def to_json(self) -> JSON:
        return {"digest": self.digest, "annotations_digest": self.annotations_digest,
                "videos_digest": self.videos_digest,
                "num_annotation_files": self.num_annotation_files, "num_videos": self.num_videos}


@dataclass(frozen=True)
class ExportParams:
    """The export's options (``analysis.export.ExportOptions``) and its world size.

    ``amp`` is None in bundles exported before the option existed (they ran in float32);
    ``projection_budget`` likewise (their maps were fitted on every point; 0 means the same),
    and ``token_dtype`` (their token features are float32).
    """

    projections: list[str]
    batch_size: int
    graph_batch: int
    thumb_size: int
    jpeg_quality: int
    seed: int
    device: str
    world_size: int
    amp: str | None = None
    projection_budget: int | None = None
    token_dtype: str | None = None

    @classmethod
    def parse(cls, f: _Fields) -> ExportParams:
        projections = f.get("projections", lambda v: isinstance(v, list)
                            and all(isinstance(x, str) for x in v), "a list of strings")
        return cls(list(projections), f.int("batch_size"), f.int("graph_batch"),
                   f.int("thumb_size"), f.int("jpeg_quality"), f.int("seed"), f.str("device"),
                   f.int("world_size"), f.str("amp", optional=True),
                   f.int("projection_budget", optional=True),
                   f.str("token_dtype", optional=True))

    def to_json(self) -> JSON:
        out: JSON = {"projections": self.projections, "batch_size": self.batch_size,
                     "graph_batch": self.graph_batch, "thumb_size": self.thumb_size,
                     "jpeg_quality": self.jpeg_quality, "seed": self.seed, "device": self.device}
        _put(out, "amp", self.amp)
        _put(out, "projection_budget", self.projection_budget)
        _put(out, "token_dtype", self.token_dtype)
        out["world_size"] = self.world_size
        return out


@dataclass(frozen=True)
class BundleMeta:
    """``meta.json`` of a bundle (format :data:`~analysis.bundle.files.BUNDLE_FORMAT`).

    Attributes:
        format: the bundle format; complete: True once every file is written.
        run: :class:`RunRef`; dataset, split: what was exported.
        data_root: the dataset root as given; data_root_abs: resolved (None: not recorded).
        source_options: the source's options (None: not recorded).
        head: the similarity head's name; factorized: its scores are dot products.
        has_drgi: the bundle holds ``drgi.safetensors``; drgi: :class:`DRGIMeta` or None.
        num_texts (Nt), num_videos (Nv), num_frames (T), max_words (L), embed_dim (D).
        skipped_videos: ids of the videos left out; skipped: their :class:`SkippedVideo`
            (None: not recorded; :attr:`skipped_list` fills it in).
        split_num_texts, split_num_videos: the split's full sizes (None: not recorded).
        metrics: ``tvr.metrics`` of the split; rank_protocols: direction -> protocol.
        logit_scale: the run's ``exp(logit_scale)``.
        text_frame: :class:`TextFrameMeta`; thumb_index: :class:`ThumbIndex`;
        projections: :class:`ProjectionsMeta`.
        checkpoint_hash: run file -> sha256 (None for an absent optional file);
        dataset_hash: :class:`DatasetHash`.
        code_version: ``{"tvr", "git_commit"}``; export_params: :class:`ExportParams`.
        created: ISO time of the export; files: bundle file -> size in bytes
            (``thumbs``: number of strips).
    """

    run: RunRef
    dataset: str
    split: str
    head: str
    factorized: bool
    has_drgi: bool
    num_texts: int
    num_videos: int
    num_frames: int
    max_words: int
    embed_dim: int
    metrics: dict[str, Any]
    thumb_index: ThumbIndex
    files: dict[str, int]
    format: int = BUNDLE_FORMAT
    complete: bool = True
    data_root: str | None = None
    data_root_abs: str | None = None
    source_options: dict[str, Any] | None = None
    drgi: DRGIMeta | None = None
    skipped_videos: list[str] | None = None
    skipped: list[SkippedVideo] | None = None
    split_num_texts: int | None = None
    split_num_videos: int | None = None
    rank_protocols: dict[str, str] | None = None
    logit_scale: float | None = None
    text_frame: TextFrameMeta | None = None
    projections: ProjectionsMeta | None = None
    checkpoint_hash: dict[str, str | None] | None = None
    dataset_hash: DatasetHash | None = None
    code_version: dict[str, Any] | None = None
    export_params: ExportParams | None = None
    created: str | None = None

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_json(cls, data: Any, source: str | Path = META) -> BundleMeta:
        """Parse a ``meta.json`` object.

        Args:
            data: the decoded JSON.
            source: the file it came from (named in errors).

        Raises:
            BundleMetaError: another bundle format (with the command that re-exports it), or a
                field missing or of the wrong type (naming the file and the field).
        """
        where = str(source)
        f = _Fields(data, where)
        version = data.get("format")
        if version != BUNDLE_FORMAT:
            bundle_dir = Path(source).parent
            raise BundleMetaError(
                f"{where}: bundle format {version!r}, this code reads format {BUNDLE_FORMAT}; "
                f"re-export with: {reexport_hint(bundle_dir)}"
            )
        skipped_videos = f.get("skipped_videos", lambda v: isinstance(v, list)
                               and all(isinstance(x, str) for x in v), "a list of video ids",
                               optional=True)
        skipped = f.get("skipped", lambda v: isinstance(v, list), "a JSON list", optional=True)
        if skipped is not None:
            skipped = [SkippedVideo.parse(_Fields(x, where, f"skipped[{i}]."))
                       for i, x in enumerate(skipped)]
        return cls(
            format=f.int("format"),
            complete=f.bool("complete"),
            run=f.sub("run", RunRef.parse),  # type: ignore[arg-type]
            dataset=f.str("dataset"),
            split=f.str("split"),
            data_root=f.str("data_root", optional=True),
            data_root_abs=f.str("data_root_abs", optional=True),
            source_options=f.dict("source_options", optional=True),
            head=f.str("head"),
            factorized=f.bool("factorized"),
            has_drgi=f.bool("has_drgi"),
            drgi=f.sub("drgi", DRGIMeta.parse, optional=True, nullable=True),
            num_texts=f.int("num_texts"),
            num_videos=f.int("num_videos"),
            num_frames=f.int("num_frames"),
            max_words=f.int("max_words"),
            embed_dim=f.int("embed_dim"),
            skipped_videos=skipped_videos,
            skipped=skipped,
            split_num_texts=f.int("split_num_texts", optional=True),
            split_num_videos=f.int("split_num_videos", optional=True),
            metrics=f.get("metrics", lambda v: isinstance(v, dict)
                          and all(x is None or _is_num(x) for x in v.values()),
                          "a JSON object of numbers"),
            rank_protocols=f.dict("rank_protocols", optional=True),
            logit_scale=f.num("logit_scale", optional=True),
            text_frame=f.sub("text_frame", TextFrameMeta.parse, optional=True),
            thumb_index=f.sub("thumb_index", ThumbIndex.parse),  # type: ignore[arg-type]
            projections=f.sub("projections", ProjectionsMeta.parse, optional=True),
            checkpoint_hash=f.dict("checkpoint_hash", optional=True),
            dataset_hash=f.sub("dataset_hash", DatasetHash.parse, optional=True),
            code_version=f.dict("code_version", optional=True),
            export_params=f.sub("export_params", ExportParams.parse, optional=True),
            created=f.str("created", optional=True),
            files=f.get("files", lambda v: isinstance(v, dict)
                        and all(_is_int(x) for x in v.values()), "a JSON object of sizes"),
        )

    # ------------------------------------------------------------------ writing
    def to_json(self) -> JSON:
        """The ``meta.json`` object (keys in the order the file has them)."""
        out: JSON = {"format": self.format, "complete": self.complete,
                     "run": self.run.to_json(), "dataset": self.dataset, "split": self.split}
        _put(out, "data_root", self.data_root)
        _put(out, "data_root_abs", self.data_root_abs)
        _put(out, "source_options", self.source_options)
        out.update(head=self.head, factorized=self.factorized, has_drgi=self.has_drgi,
                   drgi=None if self.drgi is None else self.drgi.to_json(),
                   num_texts=self.num_texts, num_videos=self.num_videos,
                   num_frames=self.num_frames, max_words=self.max_words,
                   embed_dim=self.embed_dim)
        _put(out, "skipped_videos", self.skipped_videos)
        _put(out, "skipped", None if self.skipped is None else [s.to_json() for s in self.skipped])
        _put(out, "split_num_texts", self.split_num_texts)
        _put(out, "split_num_videos", self.split_num_videos)
        out["metrics"] = self.metrics
        _put(out, "rank_protocols", self.rank_protocols)
        _put(out, "logit_scale", self.logit_scale)
        _put(out, "text_frame", self.text_frame and self.text_frame.to_json())
        out["thumb_index"] = self.thumb_index.to_json()
        _put(out, "projections", self.projections and self.projections.to_json())
        _put(out, "checkpoint_hash", self.checkpoint_hash)
        _put(out, "dataset_hash", self.dataset_hash and self.dataset_hash.to_json())
        _put(out, "code_version", self.code_version)
        _put(out, "export_params", self.export_params and self.export_params.to_json())
        _put(out, "created", self.created)
        out["files"] = self.files
        return out

    # ------------------------------------------------------------------ derived
    @property
    def has_negatives(self) -> bool:
        """The bundle stores each caption's ranked negatives (exports since they exist)."""
        return NEGATIVES in self.files

    @property
    def split_videos(self) -> int:
        """Videos in the split, skipped ones included."""
        if self.split_num_videos is not None:
            return self.split_num_videos
        return self.num_videos + len(self.skipped_list)

    @property
    def skipped_list(self) -> list[SkippedVideo]:
        """The videos the export left out; for bundles written before ``skipped`` existed,
        built from ``skipped_videos`` with the reason "not recorded"."""
        if self.skipped is not None:
            return list(self.skipped)
        return [SkippedVideo(v, "", "not recorded (bundle exported before reasons were kept)",
                             -1) for v in self.skipped_videos or []]


def read_json(path: str | Path) -> Any:
    """The decoded JSON of a bundle file.

    Raises:
        BundleError: the file is not valid JSON (naming it).
        FileNotFoundError: it does not exist.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BundleError(f"{path}: not valid JSON ({exc})") from None


def read_meta(bundle_dir: str | Path) -> BundleMeta:
    """The :class:`BundleMeta` of the bundle at ``bundle_dir``.

    Raises:
        BundleError: no ``meta.json`` there, or not valid JSON.
        BundleMetaError: another format (with the re-export command) or a bad field.
    """
    path = Path(bundle_dir) / META
    if not path.is_file():
        raise BundleError(f"{path} is missing (no complete bundle at {Path(bundle_dir)})")
    return BundleMeta.from_json(read_json(path), path)


def meta_dict(bundle_dir: str | Path) -> dict[str, Any]:
    """``meta.json`` of the bundle at ``bundle_dir`` as a plain dict, whatever its format
    (for display; empty when missing or unreadable). Use :func:`read_meta` to rely on it."""
    try:
        data = read_json(Path(bundle_dir) / META)
    except (OSError, BundleError):
        return {}
    return data if isinstance(data, dict) else {}
