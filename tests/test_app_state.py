"""The app reads only under its configured roots."""

from __future__ import annotations

import pytest

from app.state import AppRoots, PathOutsideRootsError


def test_paths_inside_roots_pass_and_outside_fail(tmp_path, monkeypatch):
    ck, data = tmp_path / "ck", tmp_path / "data"
    ck.mkdir()
    data.mkdir()
    (ck / "run").mkdir()
    monkeypatch.setenv("DRGI_LAB_CHECKPOINTS", str(ck))
    monkeypatch.setenv("DRGI_LAB_DATA", str(data))
    roots = AppRoots.from_env()
    assert roots.check(ck / "run") == (ck / "run").resolve()
    assert roots.check(data / "x" / "video1.mp4").name == "video1.mp4"
    with pytest.raises(PathOutsideRootsError, match="outside the app's roots"):
        roots.check(tmp_path / "elsewhere")
    with pytest.raises(PathOutsideRootsError):
        roots.check(ck / ".." / "elsewhere")  # no escaping with ..
    (ck / "link").symlink_to(tmp_path)
    with pytest.raises(PathOutsideRootsError):
        roots.check(ck / "link" / "secret")  # nor through a symlink
