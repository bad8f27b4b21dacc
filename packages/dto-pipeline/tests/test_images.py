"""Input listing, image decoding with reason codes, and the processes' shares."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from dto_pipeline.errors import UsageError
from dto_pipeline.images import (
    ImageReadError,
    Shard,
    decode_image,
    list_images,
    read_image,
    resolve_shard,
    shard_of,
)


def jpeg_bytes(pixels: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, **kwargs)
    return buffer.getvalue()


def test_list_images_recursive_sorted_without_hidden(tmp_path):
    for name in ("b/2.JPG", "a.png", "b/1.jpeg", ".hidden/x.jpg", "b/.y.png", "notes.txt", "c.bmp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert list_images(tmp_path) == ["a.png", "b/1.jpeg", "b/2.JPG", "c.bmp"]
    with pytest.raises(NotADirectoryError, match="not a folder"):
        list_images(tmp_path / "a.png")


def test_decode_round_trip_and_exif_orientation():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    np.testing.assert_array_equal(decode_image(buffer.getvalue(), "x.png"), pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise when shown
    rotated = decode_image(jpeg_bytes(pixels, exif=exif), "r.jpg")
    assert rotated.shape == (30, 20, 3)
    gray = io.BytesIO()
    Image.fromarray(pixels[..., 0]).save(gray, "PNG")
    assert decode_image(gray.getvalue(), "g.png").shape == (20, 30, 3)


def test_unreadable_and_truncated_images_have_reason_codes(tmp_path):
    data = jpeg_bytes(np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(ImageReadError, match=r"t\.jpg") as exc:
        decode_image(data[: len(data) // 2], "t.jpg")
    assert exc.value.reason == "truncated"
    with pytest.raises(ImageReadError, match="not a readable image") as exc:
        decode_image(b"not an image at all", "n.jpg")
    assert exc.value.reason == "unreadable"
    with pytest.raises(ImageReadError) as exc:
        read_image(tmp_path / "missing.jpg")
    assert exc.value.reason == "unreadable" and "missing.jpg" in str(exc.value)


@given(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=60), st.integers(1, 7))
def test_shares_partition_the_input_exactly(names, count):
    shares = [Shard(i, count).select(names) for i in range(count)]
    assert sorted(n for share in shares for n in share) == sorted(names)  # disjoint and complete
    # a share depends on the names only, not on the order they were listed in
    assert [sorted(s) for s in shares] == [
        sorted(Shard(i, count).select(names[::-1])) for i in range(count)
    ]


def test_shard_of_is_stable():
    # fixed values (the first 8 bytes of sha256, big-endian, modulo N): a change of the rule
    # would reshuffle the shares of every run being resumed
    assert [shard_of(f"img{i}.jpg", 4) for i in range(8)] == [1, 0, 3, 3, 2, 0, 2, 1]
    assert shard_of("a.jpg", 1) == 0
    counts = np.bincount([shard_of(f"{i:06d}.jpg", 8) for i in range(8000)], minlength=8)
    assert counts.min() > 900 and counts.max() < 1100


def test_resolve_shard_from_argument_and_torchrun_environment():
    assert resolve_shard(None, {}) == Shard(0, 1)
    assert resolve_shard("2/5", {}) == Shard(2, 5)
    assert resolve_shard(None, {"RANK": "3", "WORLD_SIZE": "4"}) == Shard(3, 4)
    # a job array of torchrun jobs: job 1 of 2, rank 3 of 4 -> share 7 of 8
    assert resolve_shard("1/2", {"RANK": "3", "WORLD_SIZE": "4"}) == Shard(7, 8)
    for bad in ("3", "a/b", "4/4", "-1/2", "1/0"):
        with pytest.raises(UsageError, match="shard"):
            resolve_shard(bad, {})
    with pytest.raises(UsageError, match="RANK"):
        resolve_shard(None, {"WORLD_SIZE": "2"})
