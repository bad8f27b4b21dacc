"""Downloads from a real third-party Hub server: olah (offline mode) serving local git repos.

olah mirrors `mirrors/{datasets,models}/ORG/NAME` git repositories read-only: no uploads, and no
`Range` support for local mirrors (it answers 200 with the whole file), so streaming is not
possible through it; uploads and streaming are tested against tests/hub_server/server.py.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dto_humans_hub import build_dataset, convert_released_opt
from dto_humans_hub.checkpoint import save_checkpoint
from dto_humans_hub.fixtures import synthetic_opt_annots, write_released_opt
from dto_humans_hub.hub import plan_dataset_upload

_spec = importlib.util.spec_from_file_location(
    "hub_harness", Path(__file__).parent / "hub_server" / "harness.py"
)
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="olah serves git repositories")


def _git_repo(folder: Path, files: list[tuple[Path, str]]) -> None:
    """A git repository at `folder` holding `files` ((source, path in repo)), one commit."""
    for source, rel in files:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, folder / rel)
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release"]):
        subprocess.run([*git, *args], check=True, capture_output=True)


def test_olah_serves_dataset_and_checkpoint_downloads(tmp_path):
    opt = write_released_opt(
        tmp_path / "COCO_CHMR_SMPL_OPT.npz", synthetic_opt_annots(40, seed=11, empty_fraction=0.1)
    )
    built = tmp_path / "ds"
    build_dataset(built, convert_released_opt(opt), max_shard_bytes=60_000, figures=False,
                  validation_fraction=0.2)  # fmt: skip
    plan = plan_dataset_upload(built, "org/dto-humans")  # exactly the files `publish` sends
    work = tmp_path / "olah"
    _git_repo(
        work / "mirrors" / "datasets" / "org" / "dto-humans",
        [(built / f.path, f.path) for f in plan.files],
    )
    rng = np.random.default_rng(1)
    tensors = {"w": rng.normal(size=(4, 4)).astype(np.float32)}
    ckpt = tmp_path / "ckpt"
    save_checkpoint(ckpt, tensors, {"architecture": "tiny"}, repo_id="org/tiny")
    _git_repo(work / "mirrors" / "models" / "org" / "tiny", [(p, p.name) for p in ckpt.iterdir()])

    with harness.olah_mirror(work) as url:
        env = harness.client_env(url, tmp_path / "home", token=None)
        proc = harness.run(
            [sys.executable, str(harness.HERE / "compare_client.py"), str(built),
             "org/dto-humans", str(tmp_path / "cache"), "nostream"],
            env,
        )  # fmt: skip
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
            "configs": ["all", "coco"], "normal_equal": True, "rows": 40,
            "splits": {"all": ["train", "validation"], "coco": ["train", "validation"]},
        }  # fmt: skip
        out = harness.python(
            "import json, pathlib\n"
            "from huggingface_hub import hf_hub_download, snapshot_download\n"
            "from dto_humans_hub.hub import download_dataset\n"
            "from dto_humans_hub.checkpoint import load_checkpoint\n"
            "m = hf_hub_download('org/dto-humans', 'manifest.json', repo_type='dataset')\n"
            "s = snapshot_download('org/dto-humans', repo_type='dataset',\n"
            "                      allow_patterns=['data/*'])\n"
            "d = download_dataset('org/dto-humans')\n"
            "c = load_checkpoint('org/tiny')\n"
            "print(json.dumps({'manifest': open(m).read(), "
            "'shards': sorted(str(p.relative_to(s)) for p in pathlib.Path(s).rglob('*.parquet')), "
            "'verified': str(d), 'w': c.tensors['w'].tolist(), 'config': c.config}))",
            env,
        )
    assert out["manifest"] == (built / "manifest.json").read_text()
    assert out["shards"] == sorted(f.path for f in plan.files if f.path.endswith(".parquet"))
    assert out["config"] == {"architecture": "tiny"}
    np.testing.assert_array_equal(np.array(out["w"], dtype=np.float32), tensors["w"])
