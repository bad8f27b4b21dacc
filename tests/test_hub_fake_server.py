"""Uploads, downloads and streaming against the in-repo Hub-protocol test server.

`uv run apps/publish` uploads a built dataset and a checkpoint; `datasets.load_dataset("org/name")`
(normal and streaming), `snapshot_download`, `hf download` and `load_checkpoint` read them back in
subprocesses with HF_ENDPOINT set before import. Tokens come from HF_TOKEN and must never appear
in any output.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dto_humans_hub import build_dataset, convert_camerahmr_release, convert_released_opt
from dto_humans_hub.checkpoint import save_checkpoint
from dto_humans_hub.fixtures import (
    synthetic_opt_annots,
    synthetic_release_arrays,
    write_camerahmr_release,
    write_released_opt,
)
from dto_humans_hub.hub import plan_dataset_upload

_spec = importlib.util.spec_from_file_location(
    "hub_harness", Path(__file__).parent / "hub_server" / "harness.py"
)
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

TOKEN = "hf_SECRETtestTOKEN0123456789"
PUBLISH = [sys.executable, str(harness.ROOT / "apps" / "publish")]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with harness.fake_hub(tmp_path_factory.mktemp("hub")) as url:
        yield url


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("data")
    opt = write_released_opt(
        tmp / "COCO_CHMR_SMPL_OPT.npz", synthetic_opt_annots(50, seed=7, empty_fraction=0.1)
    )
    release = write_camerahmr_release(
        tmp / "insta1-release.npz", synthetic_release_arrays(30, source="insta", seed=8)
    )
    root = tmp / "ds"
    conversions = [convert_released_opt(opt), convert_camerahmr_release(release)]
    build_dataset(
        root, conversions, max_shard_bytes=60_000, repo_id="org/dto-humans", validation_fraction=0.2
    )
    return root


def _assert_no_token(*procs) -> None:
    for proc in procs:
        assert TOKEN not in proc.stdout and TOKEN not in proc.stderr


COMPARE = str(harness.HERE / "compare_client.py")


def test_publish_dataset_then_load_normal_and_streaming(hub, dataset_dir, tmp_path):
    env = harness.client_env(hub, tmp_path / "home", token=TOKEN)
    before = len(harness.server_log(hub))
    dry = harness.run(
        [*PUBLISH, "dataset", str(dataset_dir), "--repo", "org/dto-humans", "--dry-run"], env
    )
    assert "dry run: nothing uploaded" in dry.stdout and "HF_TOKEN" in dry.stdout
    assert "data/annotations/coco/train-00000-of-" in dry.stdout and ".dto-build" not in dry.stdout
    assert len(harness.server_log(hub)) == before + 1  # only our own /_log read: nothing sent

    first = harness.run([*PUBLISH, "dataset", str(dataset_dir), "--repo", "org/dto-humans"], env)
    again = harness.run([*PUBLISH, "dataset", str(dataset_dir), "--repo", "org/dto-humans"], env)
    assert "uploaded" in first.stdout and "is up to date: nothing uploaded" in again.stdout
    _assert_no_token(dry, first, again)

    proc = harness.run(
        [
            sys.executable,
            COMPARE,
            str(dataset_dir),
            "org/dto-humans",
            str(tmp_path / "c"),
            "stream",
        ],
        env,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    splits = ["train", "validation"]
    assert result == {
        "configs": ["all", "coco", "insta"], "normal_equal": True, "stream_equal": True,
        "rows": 80, "empty_shape": [[0, 24, 3]],
        "splits": {"all": splits, "coco": splits},
    }  # fmt: skip
    log = harness.server_log(hub)
    assert any(e["range"] for e in log if "/resolve/" in e["path"])  # streaming used ranges


@pytest.mark.slow
def test_download_verifies_against_the_manifest(hub, dataset_dir, tmp_path):
    env = harness.client_env(hub, tmp_path / "home", token=TOKEN)
    harness.run([*PUBLISH, "dataset", str(dataset_dir), "--repo", "org/dl-test"], env)
    out = harness.python(
        "import json\n"
        "from dto_humans_hub.hub import download_dataset\n"
        f"p = download_dataset('org/dl-test', local_dir={str(tmp_path / 'dl')!r})\n"
        "print(json.dumps(sorted(str(x.relative_to(p)) for x in p.rglob('*') "
        "if x.is_file() and '.cache' not in x.parts)))",
        env,
    )
    assert "manifest.json" in out and "README.md" in out
    assert sum(p.startswith("data/annotations/") for p in out) == len(
        list((dataset_dir / "data" / "annotations").rglob("*.parquet"))
    )
    cli = harness.run(
        [str(Path(sys.executable).parent / "hf"), "download", "org/dl-test", "--repo-type",
         "dataset", "--include", "manifest.json", "--local-dir", str(tmp_path / "cli")],
        env,
    )  # fmt: skip
    assert (tmp_path / "cli" / "manifest.json").read_bytes() == (
        dataset_dir / "manifest.json"
    ).read_bytes()
    _assert_no_token(cli)
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    local_dir = str(tmp_path / "dl")
    again = harness.python(
        "import json\nfrom dto_humans_hub.hub import download_dataset\n"
        f"print(json.dumps(str(download_dataset('org/dl-test', local_dir={local_dir!r}))))",
        offline,
    )
    assert again == str(tmp_path / "dl")


@pytest.mark.slow
def test_republishing_a_rebuild_deletes_the_old_shards(hub, tmp_path):
    opt = write_released_opt(tmp_path / "COCO_CHMR_SMPL_OPT.npz", synthetic_opt_annots(40, seed=3))
    root = tmp_path / "ds"
    env = harness.client_env(hub, tmp_path / "home", token=TOKEN)
    listing = (
        "import json\nfrom huggingface_hub import HfApi\n"
        "print(json.dumps(sorted(HfApi().list_repo_files('org/rebuilt', repo_type='dataset'))))"
    )
    for shard_bytes in (40_000, 10**9):  # many shards, then one
        build_dataset(root, convert_released_opt(opt), max_shard_bytes=shard_bytes,
                      validation_fraction=0, figures=False)  # fmt: skip
        harness.run([*PUBLISH, "dataset", str(root), "--repo", "org/rebuilt"], env)
        remote = [p for p in harness.python(listing, env) if not p.startswith(".")]
        assert remote == sorted(f.path for f in plan_dataset_upload(root, "org/rebuilt").files)
    assert [p for p in remote if p.endswith(".parquet")] == [
        "data/annotations/coco/train-00000-of-00001.parquet"
    ]


@pytest.mark.slow
def test_interrupted_publish_resumes_without_resending(hub, dataset_dir, tmp_path):
    env = harness.client_env(hub, tmp_path / "home", token=TOKEN)
    harness.control(hub, fail_commits=1)
    failed = harness.run(
        [*PUBLISH, "dataset", str(dataset_dir), "--repo", "org/resume"], env, check=False
    )
    assert failed.returncode != 0 and "500" in (failed.stdout + failed.stderr)
    start = len(harness.server_log(hub))
    resumed = harness.run([*PUBLISH, "dataset", str(dataset_dir), "--repo", "org/resume"], env)
    puts = [e for e in harness.server_log(hub)[start:] if e["method"] == "PUT"]
    assert "uploaded" in resumed.stdout and puts == []  # blobs of the failed try were kept
    _assert_no_token(failed, resumed)


@pytest.mark.slow
def test_checkpoint_publish_and_load_back(hub, tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"a.weight": rng.normal(size=(6, 3)).astype(np.float32), "b": np.arange(5)}
    folder = tmp_path / "ckpt"
    save_checkpoint(folder, tensors, {"architecture": "tiny"}, metadata={"git_sha": "0" * 8})
    assert not (folder / "README.md").exists()  # no repo id given: publish generates the card
    env = harness.client_env(hub, tmp_path / "home", token=TOKEN)
    dry = harness.run([*PUBLISH, "checkpoint", str(folder), "--repo", "org/tiny", "--dry-run"], env)
    assert "a model card is generated" in dry.stdout and not (folder / "README.md").exists()
    pub = harness.run([*PUBLISH, "checkpoint", str(folder), "--repo", "org/tiny"], env)
    assert (folder / "README.md").is_file()
    _assert_no_token(dry, pub)
    out = harness.python(
        "import json, numpy as np\n"
        "from dto_humans_hub.checkpoint import load_checkpoint\n"
        "from huggingface_hub import ModelCard\n"
        "c = load_checkpoint('org/tiny')\n"
        "print(json.dumps({'tensors': {k: v.tolist() for k, v in c.tensors.items()}, "
        "'config': c.config, 'meta': c.metadata, "
        "'tag': ModelCard.load('org/tiny').data.pipeline_tag}))",
        env,
    )
    assert out["config"] == {"architecture": "tiny"} and out["meta"]["git_sha"] == "0" * 8
    assert out["tag"] == "image-to-3d"
    for name, value in tensors.items():
        np.testing.assert_array_equal(np.array(out["tensors"][name]), value)


def test_publish_without_a_token_fails_cleanly(hub, dataset_dir, tmp_path):
    env = harness.client_env(hub, tmp_path / "home", token=None)
    proc = harness.run(
        [*PUBLISH, "dataset", str(dataset_dir), "--repo", "org/anon"], env, check=False
    )
    assert proc.returncode != 0 and "401" in (proc.stdout + proc.stderr)
