"""Atomic switching of a dataset folder between complete builds (standard library only).

A dataset folder `DIR` is a symbolic link to one complete build:

    DIR -> .DIR.builds/b-<16 hex>          what readers (load_dataset, publish) see
    .DIR.builds/b-<16 hex>/                 builds: the current one, or one being written
    .DIR.builds/lock                        the builder's pid while it runs
    .DIR.link.tmp                           a new link, for one instant before it replaces DIR

A build is written beside the current one, in its own folder named after its input, and made
current by one `os.replace` of the link: a reader sees the old build or the new one, complete,
whatever moment a builder is killed at. Old builds are deleted after the switch; a killed switch
is finished (or its leftovers removed) by the next build of the same folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "BuildInProgressError",
    "DatasetFolderError",
    "build_lock",
    "builds_dir",
    "current_build",
    "dataset_path",
    "remove_other_builds",
    "switch_to",
]

BUILD_PREFIX = "b-"


class BuildInProgressError(RuntimeError):
    """Another live process is building into the same dataset folder."""


class DatasetFolderError(ValueError):
    """The dataset path exists but is not a dataset folder made by dto-humans-hub."""


def builds_dir(root: Path) -> Path:
    """`.DIR.builds` next to the dataset link `DIR`."""
    return root.parent / f".{root.name}.builds"


def _tmp_link(root: Path) -> Path:
    return root.parent / f".{root.name}.link.tmp"


def dataset_path(root: str | os.PathLike[str]) -> Path:
    """The absolute path of a dataset link (`.` and `..` resolved, links kept)."""
    path = Path(os.path.abspath(root))
    if not path.name:
        raise DatasetFolderError(f"{root}: give the dataset's own path, e.g. out/dto-humans")
    return path


def current_build(root: Path) -> Path | None:
    """The build the dataset link points to; None if there is no dataset yet (no path, or an
    empty folder). Raises DatasetFolderError for anything else at that path."""
    if root.is_symlink():
        target = Path(os.readlink(root))
        build = (root.parent / target) if not target.is_absolute() else target
        if build.parent.resolve() != builds_dir(root).resolve() or not build.is_dir():
            raise DatasetFolderError(
                f"{root} links to {target}, not to a build in {builds_dir(root).name}; "
                "remove the link or choose another output folder"
            )
        return build
    if not root.exists():
        return None
    if root.is_dir() and not any(root.iterdir()):
        return None
    raise DatasetFolderError(
        f"{root} exists and is not a dataset folder made by this version of dto-humans-hub "
        "(a link to a build); choose another output folder, or move it away"
    )


@contextlib.contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """An exclusive lock file holding the builder's pid; a stale lock (dead pid) is taken over."""
    folder = builds_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or "0")
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: its builder died
                continue
            except PermissionError:
                pass
            raise BuildInProgressError(f"{root}: process {pid} is building it") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def switch_to(root: Path, build: Path, carry: Iterable[str] = ()) -> None:
    """Make `build` (a complete build in `builds_dir(root)`) the dataset at `root`, atomically,
    then delete every other build. `carry`: paths (relative) of files of the current build to
    keep (hard links into `build` before the switch, e.g. the user's own files)."""
    old = current_build(root)
    if old is not None and old.resolve() != build.resolve():
        for rel in carry:
            source, dest = old / rel, build / rel
            if source.is_file() and not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, dest)
    if root.is_dir() and not root.is_symlink():
        root.rmdir()  # an empty folder made by the user: nothing to lose
    tmp = _tmp_link(root)
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(build, root.parent), tmp)
    os.replace(tmp, root)
    _fsync_dir(root.parent)
    remove_other_builds(root)


def remove_other_builds(root: Path, keep: Iterable[Path] = ()) -> None:
    """Delete every build except the current one and `keep`, and a leftover temporary link."""
    _tmp_link(root).unlink(missing_ok=True)
    folder = builds_dir(root)
    if not folder.is_dir():
        return
    current = current_build(root)
    wanted = {p.resolve() for p in (*keep, *([current] if current else []))}
    for build in sorted(folder.iterdir()):
        if build.name.startswith(BUILD_PREFIX) and build.resolve() not in wanted:
            shutil.rmtree(build)
