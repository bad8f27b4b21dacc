"""MA-HMR checkpoints through the in-repo Hub-protocol server: `push_to_hub`, then
`from_pretrained(<repo id>)`, and `hf download` followed by an offline `from_pretrained(<dir>)`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "hub_harness", Path(__file__).parent / "hub_server" / "harness.py"
)
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

DIGEST = """
import hashlib, json, torch
def digest(model):
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode()); h.update(v.cpu().numpy().tobytes())
    return h.hexdigest()
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with harness.fake_hub(tmp_path_factory.mktemp("hub")) as url:
        yield url


@pytest.mark.slow
def test_push_then_load_by_id_and_offline_from_a_download(hub: str, tmp_path: Path) -> None:
    env = harness.client_env(hub, tmp_path / "home")
    pushed = harness.python(
        DIGEST
        + """
from mahmr_model import MAHMR, tiny
torch.manual_seed(0)
model = MAHMR(tiny())
model.push_to_hub("org/mahmr-tiny")
print(json.dumps({"digest": digest(model)}))
""",
        env,
    )
    by_id = harness.python(
        DIGEST
        + """
from mahmr_model import MAHMR
model = MAHMR.from_pretrained("org/mahmr-tiny")
print(json.dumps({"digest": digest(model), "variant": model.config.variant}))
""",
        env,
    )
    assert by_id == {"digest": pushed["digest"], "variant": "tiny"}

    target = tmp_path / "download"
    hf = str(Path(sys.executable).parent / "hf")
    harness.run([hf, "download", "org/mahmr-tiny", "--local-dir", str(target)], env)
    assert {p.name for p in target.iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}  # unreachable
    from_dir = harness.python(
        DIGEST
        + f"""
from mahmr_model import MAHMR
print(json.dumps({{"digest": digest(MAHMR.from_pretrained({str(target)!r}))}}))
""",
        offline,
    )
    assert from_dir["digest"] == pushed["digest"]
