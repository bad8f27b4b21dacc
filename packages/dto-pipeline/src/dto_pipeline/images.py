"""The input images of a run: listing, reading, and each process's share.

An image is named by its path relative to the images folder (POSIX separators); listings are
sorted, so every process of a run sees the same list. A process's share depends only on each
name (a hash), never on the listing order, so shares stay disjoint and deterministic even when
processes list the folder at different times.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UsageError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "Shard",
    "decode_image",
    "list_images",
    "read_image",
    "resolve_shard",
    "shard_of",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""File name endings (case-insensitive) taken as images."""


class ImageReadError(ValueError):
    """An image file that cannot be used; `reason` is the run report's code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def list_images(root: str | os.PathLike[str]) -> list[str]:
    """Sorted relative POSIX paths of the image files under `root` (recursive; hidden files and
    folders are skipped).

    Raises:
        NotADirectoryError: `root` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder of images")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(found)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of an image file (see `decode_image`).

    Raises:
        ImageReadError: reason "unreadable" or "truncated".
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageReadError("unreadable", f"{path}: {exc}") from exc
    return decode_image(data, str(path))


def decode_image(data: bytes, name: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of an image file's bytes, EXIF orientation applied (as OpenCV's
    `imread`, which the official scripts use). `name` is used in messages.

    Raises:
        ImageReadError: reason "unreadable" (not an image, unknown format, empty) or "truncated"
            (the file ends before its pixel data does).
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            pixels = np.asarray(image.convert("RGB"))
    except UnidentifiedImageError as exc:
        raise ImageReadError("unreadable", f"{name}: not a readable image") from exc
    except OSError as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "unreadable"
        raise ImageReadError(reason, f"{name}: {exc}") from exc
    except (ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError("unreadable", f"{name}: {exc}") from exc
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageReadError("unreadable", f"{name}: empty image {pixels.shape}")
    return pixels


@dataclass(frozen=True)
class Shard:
    """This process's share: `index` of `count` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise UsageError(f"shard {self.index}/{self.count}: need 0 <= i < N")

    @property
    def name(self) -> str:
        """`rank-IIIII-of-NNNNN`, the folder name of this share's output."""
        return f"rank-{self.index:05d}-of-{self.count:05d}"

    def select(self, names: Sequence[str]) -> list[str]:
        """The names of `names` in this share, in their order."""
        return [n for n in names if shard_of(n, self.count) == self.index]


def shard_of(name: str, count: int) -> int:
    """The share (0..count-1) an image name belongs to: its sha256 modulo `count`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def resolve_shard(arg: str | None, environ: Mapping[str, str] = os.environ) -> Shard:
    """This process's share from `--shard i/N` and/or torchrun's RANK / WORLD_SIZE.

    With both (a job array of torchrun jobs), job i of N with rank r of G processes is share
    i G + r of N G. Neither: 0 of 1.

    Raises:
        ValueError: a malformed `--shard` or environment value.
    """
    index, count = 0, 1
    if arg is not None:
        parts = arg.split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise UsageError(f"--shard {arg!r}: expected i/N, e.g. 0/4")
        index, count = int(parts[0]), int(parts[1])
        Shard(index, count)  # validates
    world = environ.get("WORLD_SIZE")
    if world is not None:
        rank = environ.get("RANK", "")
        if not (world.isdigit() and rank.isdigit()):
            raise UsageError(f"RANK={rank!r} WORLD_SIZE={world!r}: expected integers (torchrun)")
        g, r = int(world), int(rank)
        index, count = index * g + r, count * g
    return Shard(index, count)
