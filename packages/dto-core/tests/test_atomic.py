"""dto_core.atomic.write_atomic: new files get 0o666 less the umask, a failed write leaves the
target as it was and no temporary file behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dto_core.atomic import write_atomic


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
@pytest.mark.parametrize("fsync", [False, True])
def test_mode_is_0666_less_the_umask(tmp_path: Path, umask, mask: int, mode: int, fsync: bool):
    umask(mask)
    path = write_atomic(tmp_path / "sub" / "a.json", lambda f: f.write(b"{}"), fsync=fsync)
    assert path == tmp_path / "sub" / "a.json" and path.read_bytes() == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_replaces_and_a_failed_write_keeps_the_old_file(tmp_path: Path):
    path = tmp_path / "a.bin"
    write_atomic(path, lambda f: f.write(b"old"))
    write_atomic(str(path), lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"

    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, fail)
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
