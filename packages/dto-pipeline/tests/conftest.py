"""Shared fixtures: the synthetic SMPL-format body model and a folder of synthetic photos with
simulated teachers (dto_pipeline.synthetic), plus two bad image files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dto_core.synthetic_body import write_synthetic_smpl_dir


@pytest.fixture(scope="session")
def smpl_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(folder)
    return folder


@pytest.fixture(scope="session")
def body(smpl_dir):
    from dto_pipeline.job import body_model

    return body_model(smpl_dir, None)[0]


@pytest.fixture(scope="session")
def photos_dir(tmp_path_factory, body) -> Path:
    """Five synthetic photos (144 x 192), a truncated copy of one and a file that is no image,
    and `simulated.toml` naming them."""
    from dto_pipeline.synthetic import make_photos, write_photos

    root = tmp_path_factory.mktemp("photos")
    images = root / "images"
    photos = make_photos(
        body, 5, seed=1, image_size=(144, 192), persons=(2, 5), depth_range=(2.0, 8.0)
    )
    write_photos(images, photos, body)
    data = (images / photos.names[0]).read_bytes()
    (images / "broken" / "truncated.png").parent.mkdir()
    (images / "broken" / "truncated.png").write_bytes(data[: len(data) // 2])
    (images / "broken" / "notes.jpg").write_bytes(b"these are not pixels")
    (root / "simulated.toml").write_text('[simulated]\nphotos = "images"\n')
    return root


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, photos_dir, smpl_dir) -> Path:
    """One uninterrupted single-process run over the photo folder (official variant)."""
    from dto_pipeline.job import run_job

    out = tmp_path_factory.mktemp("reference") / "run"
    run_job(
        images=photos_dir / "images",
        out=out,
        teachers=photos_dir / "simulated.toml",
        device="cpu",
        chunk=2,
        smpl_dir=smpl_dir,
    )
    return out
