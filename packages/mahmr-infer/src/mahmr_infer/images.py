"""Reading one image file into RGB pixels, with one-line reasons for the files that fail."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ImageReadError", "read_image"]


class ImageReadError(ValueError):
    """An image file cannot be used; `path` and a one-line `reason`."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied (grayscale replicated, alpha dropped), as
    mahmr_model reads a path; the whole file is decoded here so that a truncated file fails
    here with the file named, not later in a batch."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            rgb = ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(path, "not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"too many pixels ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise ImageReadError(path, f"broken image data ({exc})") from None
    pixels = np.array(rgb)
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageReadError(path, f"empty image ({pixels.shape[1]} x {pixels.shape[0]} px)")
    return pixels
