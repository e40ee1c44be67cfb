"""Annotation file readers that raise :class:`SourceError` naming the file and line or key.

Text files are read as UTF-8 (a leading byte-order mark is ignored). Line numbers are 1-based.
JSON locations are written as ``key sentences[12].caption``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError, VideoTextRecord

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# LSMDC-style time stamp "hh.mm.ss.mmm" (e.g. 01.02.27.034).
_HMS = re.compile(r"^(\d+)\.(\d{1,2})\.(\d{1,2})\.(\d+)$")


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file; otherwise raise :class:`SourceError` saying what it is."""
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "not found"
        raise SourceError(path, "", f"{what} {problem}; expected a file here")
    return path


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (BOM tolerated); undecodable bytes name their line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(path, f"line {line}", f"not valid UTF-8 text ({exc.reason})") from None


def text_lines(path: Path) -> list[str]:
    """The lines of a text file without their line endings (only ``\\n`` splits lines)."""
    return [line.rstrip("\r") for line in read_text(path).split("\n")]


def read_id_list(path: Path, what: str = "video list") -> list[tuple[int, str]]:
    """Read a one-id-per-line list; returns ``(line number, id)`` pairs in file order.

    Blank lines are skipped; surrounding whitespace is stripped.

    Raises:
        SourceError: missing file, an id containing whitespace, a duplicate id, or no ids.
    """
    require_file(path, what)
    out: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for n, raw in enumerate(text_lines(path), start=1):
        vid = raw.strip()
        if not vid:
            continue
        if any(ch.isspace() for ch in vid):
            raise SourceError(path, f"line {n}", f"expected one video id per line, got {vid!r}")
        if vid in first_line:
            raise SourceError(
                path, f"line {n}", f"duplicate video id {vid!r} (first on line {first_line[vid]})"
            )
        first_line[vid] = n
        out.append((n, vid))
    if not out:
        raise SourceError(path, "", f"{what} is empty; expected one video id per line")
    return out


def read_split_list(root: Path, split: str, dataset: str) -> tuple[Path, list[tuple[int, str]]]:
    """Read the ``{split}_list.txt`` id list of a split (MSVD, VATEX, DiDeMo layout).

    Args:
        root: dataset root folder.
        split: split name.
        dataset: the benchmark's display name, used in messages (``"MSVD {split} list"``).

    Returns:
        The list's path and its ``(line number, id)`` pairs (see :func:`read_id_list`).
    """
    path = root / f"{split}_list.txt"
    return path, read_id_list(path, f"{dataset} {split} list")


def records_for_listed_ids(
    list_path: Path,
    ids: Sequence[tuple[int, str]],
    captions: Mapping[str, Sequence[str]],
    video_path: Callable[[str], Path],
    no_captions: str,
) -> list[VideoTextRecord]:
    """One record per listed video, in list order, with all its captions.

    Args:
        list_path: the id list the ids come from (named in errors).
        ids: ``(line number, video id)`` pairs, as :func:`read_id_list` returns them.
        captions: captions per video id.
        video_path: maps a video id to its file path.
        no_captions: the end of the error for a listed video without captions, after
            ``video '<id>' `` (e.g. ``"has no captions in <file>"``).

    Raises:
        SourceError: a listed video without captions, naming the list file and line.
    """
    records: list[VideoTextRecord] = []
    for line, vid in ids:
        caps = captions.get(vid)
        if caps is None:
            raise SourceError(list_path, f"line {line}", f"video {vid!r} {no_captions}")
        records.append(VideoTextRecord(vid, video_path(vid), tuple(caps)))
    return records


def read_csv_rows(
    path: Path, required: Sequence[str], what: str, delimiter: str = ","
) -> list[tuple[int, dict[str, str]]]:
    """Read a CSV file with a header row; returns ``(line number, row dict)`` pairs.

    Blank lines are skipped. Header names are stripped of surrounding whitespace.

    Raises:
        SourceError: missing file, malformed CSV, a required column absent from the header,
            or a row whose field count differs from the header's.
    """
    require_file(path, what)
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for row in reader:
            if not row or all(not f.strip() for f in row):
                continue
            if header is None:
                header = [h.strip() for h in row]
                header_line = reader.line_num
                missing = [c for c in required if c not in header]
                if missing:
                    raise SourceError(
                        path,
                        f"line {header_line}",
                        f"missing column(s) {', '.join(map(repr, missing))}; header has "
                        f"{', '.join(map(repr, header))}, expected {', '.join(map(repr, required))}",
                    )
                continue
            if len(row) != len(header):
                raise SourceError(
                    path,
                    f"line {reader.line_num}",
                    f"expected {len(header)} fields ({delimiter.join(header)}), got {len(row)}",
                )
            rows.append((reader.line_num, dict(zip(header, row))))
    except csv.Error as exc:
        raise SourceError(path, f"line {reader.line_num}", f"malformed CSV: {exc}") from None
    if header is None:
        raise SourceError(
            path, "", f"{what} is empty; expected a header with {', '.join(map(repr, required))}"
        )
    return rows


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file; a syntax error names its line and column."""
    require_file(path, what)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise SourceError(
            path, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}"
        ) from None


def json_key(*parts: str | int) -> str:
    """Render a JSON location, e.g. ``("sentences", 3, "caption")`` -> ``sentences[3].caption``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return f"key {out}" if out else "top level"


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return names.get(type(value), type(value).__name__)


def expect_dict(value: Any, path: Path, parts: Sequence[str | int], what: str) -> dict[Any, Any]:
    """Return ``value`` if it is a dict, else raise naming the key and ``what`` was expected."""
    if not isinstance(value, dict):
        raise SourceError(path, json_key(*parts), f"expected {what}, got {_type_name(value)}")
    return value


def expect_list(value: Any, path: Path, parts: Sequence[str | int], what: str) -> list[Any]:
    """Return ``value`` if it is a list, else raise naming the key and ``what`` was expected."""
    if not isinstance(value, list):
        raise SourceError(path, json_key(*parts), f"expected {what}, got {_type_name(value)}")
    return value


def expect_text(value: Any, path: Path, parts: Sequence[str | int], what: str) -> str:
    """Return ``value`` stripped if it is a non-empty string, else raise naming the key."""
    if not isinstance(value, str):
        raise SourceError(path, json_key(*parts), f"expected {what}, got {_type_name(value)}")
    text = value.strip()
    if not text:
        raise SourceError(path, json_key(*parts), f"expected {what}, got an empty string")
    return text


def get_key(
    obj: dict[Any, Any], key: str, path: Path, parts: Sequence[str | int], what: str
) -> Any:
    """``obj[key]``, or :class:`SourceError` naming the missing key and ``what`` it should hold."""
    if key not in obj:
        raise SourceError(path, json_key(*parts, key), f"missing; expected {what}")
    return obj[key]


def get_list(
    obj: dict[Any, Any], key: str, path: Path, parts: Sequence[str | int], what: str
) -> list[Any]:
    """``obj[key]`` checked to be a list; errors name the key and ``what`` it should hold."""
    return expect_list(get_key(obj, key, path, parts, what), path, (*parts, key), what)


def get_text(
    obj: dict[Any, Any],
    key: str,
    path: Path,
    parts: Sequence[str | int],
    what: str,
    expected: str | None = None,
) -> str:
    """``obj[key]`` checked to be a non-empty string, returned stripped.

    Args:
        obj: the JSON object.
        key: the key to read.
        path: the file (named in errors).
        parts: the location of ``obj`` in the file.
        what: what the key should hold, said when it is missing.
        expected: what the value should be, said when it is not a non-empty string;
            default ``what``.
    """
    value = get_key(obj, key, path, parts, what)
    return expect_text(value, path, (*parts, key), what if expected is None else expected)


def to_seconds(value: Any) -> float | None:
    """Seconds from a number, a numeric string or an ``hh.mm.ss.mmm`` stamp; ``None`` if invalid.

    Non-finite values are invalid.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        sec = float(value)
    elif isinstance(value, str):
        text = value.strip()
        m = _HMS.match(text)
        if m:
            h, mi, s, frac = m.groups()
            sec = int(h) * 3600 + int(mi) * 60 + int(s) + int(frac) / 10 ** len(frac)
        else:
            try:
                sec = float(text)
            except ValueError:
                return None
    else:
        return None
    return sec if math.isfinite(sec) else None


def expect_seconds(value: Any, path: Path, where: str) -> float:
    """Like :func:`to_seconds` but raising :class:`SourceError` at ``where`` when invalid."""
    sec = to_seconds(value)
    if sec is None:
        raise SourceError(path, where, f"expected a time in seconds (a number), got {value!r}")
    return sec


def expect_time_pairs(value: Any, path: Path, parts: Sequence[str | int], what: str) -> None:
    """Check that ``value`` is a list of ``[start, end]`` pairs of times in seconds.

    Raises:
        SourceError: ``value`` is not a list (saying ``what`` was expected), an item is not a
            list of two values, or a value is not a time (naming the key of each).
    """
    pairs = expect_list(value, path, parts, what)
    for i, pair in enumerate(pairs):
        pair = expect_list(pair, path, (*parts, i), "a [start, end] pair")
        if len(pair) != 2:
            raise SourceError(path, json_key(*parts, i), f"expected [start, end], got {pair!r}")
        for j, t in enumerate(pair):
            expect_seconds(t, path, json_key(*parts, i, j))
