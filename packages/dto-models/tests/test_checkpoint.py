"""Weight files: formats, strict loading with named keys, manifests, path / Hub-id resolution."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dto_models.checkpoint import (
    CheckpointError,
    load_checked,
    manifest,
    manifest_mismatches,
    read_manifest,
    read_state_dict,
    resolve_weights,
)


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.bn = torch.nn.BatchNorm1d(2)


def random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: torch.randn_like(v.float()).to(v.dtype) for k, v in Net().state_dict().items()}


@pytest.mark.parametrize("form", ["pth", "ckpt", "safetensors"])
def test_read_state_dict_formats_load_exactly(tmp_path: Path, form: str) -> None:
    state = random_state()
    path = tmp_path / f"w.{form}"
    if form == "pth":
        torch.save(state, path)
    elif form == "ckpt":  # Lightning: tensors under "state_dict" next to training metadata
        torch.save({"state_dict": state, "epoch": 3, "global_step": 10}, path)
    else:
        save_file(state, path)
    net = Net()
    load_checked(net, read_state_dict(path))
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_read_state_dict_rejects_non_tensors_and_missing_files(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(2, 3), "note": "text"}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match="note"):
        read_state_dict(tmp_path / "mixed.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a state dict"):
        read_state_dict(tmp_path / "list.pth")
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        read_state_dict(tmp_path / "absent.pth")


class HyperParameters:  # a pickled Python object, as Lightning stores hyper-parameters
    def __init__(self) -> None:
        self.lr = 1e-4


def test_pickled_objects_are_refused_with_a_conversion_hint(tmp_path: Path) -> None:
    source = tmp_path / "train.ckpt"
    torch.save({"state_dict": random_state(), "hyper_parameters": HyperParameters()}, source)
    with pytest.raises(CheckpointError, match=r"never unpickles.*save_file") as info:
        read_state_dict(source)
    assert str(source) in str(info.value)


def test_load_checked_names_missing_unexpected_and_misshaped_keys() -> None:
    state = random_state()
    del state["bn.running_mean"]
    state["extra.weight"] = torch.zeros(1)
    state["fc.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError) as info:
        load_checked(Net(), state)
    message = str(info.value)
    assert "missing (1): bn.running_mean" in message
    assert "unexpected (1): extra.weight" in message
    assert "fc.bias: file (5,) vs model (2,)" in message


def test_load_checked_key_map_and_ignored_prefixes() -> None:
    state = {f"model.{k}": v for k, v in random_state().items()}
    state["model.aux.weight"] = torch.zeros(1)
    state["optimizer_step"] = torch.zeros(1)

    def key_map(key: str) -> str | None:
        return None if key == "optimizer_step" else key.removeprefix("model.")

    net = Net()
    load_checked(net, state, key_map=key_map, ignore_unexpected=("aux.",))
    assert torch.equal(net.fc.weight, state["model.fc.weight"])
    with pytest.raises(CheckpointError, match=r"unexpected \(1\): aux\.weight"):
        load_checked(Net(), state, key_map=key_map)
    with pytest.raises(CheckpointError, match="two checkpoint keys map to the model key 'x'"):
        load_checked(Net(), state, key_map=lambda key: "x")


def test_manifest_on_meta_device_and_mismatches(tmp_path: Path) -> None:
    with torch.device("meta"):
        net = Net()
    ours = manifest(net)
    assert ours == {
        "fc.weight": (2, 3),
        "fc.bias": (2,),
        "bn.weight": (2,),
        "bn.bias": (2,),
        "bn.running_mean": (2,),
        "bn.running_var": (2,),
        "bn.num_batches_tracked": (),
    }
    entries = [{"name": k, "shape": list(v), "dtype": "float32"} for k, v in ours.items()]
    (tmp_path / "m.json").write_text(json.dumps({"entries": entries}))
    official = read_manifest(tmp_path / "m.json")
    assert manifest_mismatches(ours, official) == []
    official["fc.weight"] = (3, 3)
    official["gone"] = (1,)
    del official["bn.bias"]
    assert manifest_mismatches(ours, official) == [
        "missing in ours: gone",
        "extra in ours: bn.bias",
        "fc.weight: ours (2, 3) vs official (3, 3)",
    ]


def test_resolve_weights_local_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve_weights(tmp_path) == tmp_path
    assert resolve_weights(tmp_path, "model.safetensors") == tmp_path / "model.safetensors"
    assert resolve_weights(tmp_path / "model.safetensors") == tmp_path / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=r"config\.json not found"):
        resolve_weights(tmp_path, "config.json")
    (tmp_path / "weights").mkdir()
    monkeypatch.chdir(tmp_path)
    paths = ("./nothing/here", "a/b/c", "no-slash", "/abs/missing", "ckpt/model.safetensors")
    for bad in (*paths, "weights/camerahmr"):  # a missing file in an existing folder
        with pytest.raises(FileNotFoundError, match=f"^{bad}: not a file or directory, nor a Hub"):
            resolve_weights(bad, "x.bin")


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Hub cache and no network: huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE
    when imported, so its constants are set (setting only the variables lets it try the network
    until a timeout)."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.mark.usefixtures("offline_hub")
def test_resolve_weights_hub_id_goes_to_the_hub_offline() -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo = "depth-anything/Depth-Anything-V2-Small-hf"
    for filename in ("model.safetensors", None):
        with pytest.raises(FileNotFoundError) as error:
            resolve_weights(repo, filename)
        assert str(error.value).startswith(
            f"{repo}: not a file or directory, and as a Hub id: LocalEntryNotFoundError: "
        )
        assert isinstance(error.value.__cause__, LocalEntryNotFoundError)


@pytest.mark.usefixtures("offline_hub")
@pytest.mark.parametrize(
    "teacher", ["MaskRCNNDetector", "ViTPoseEstimator", "CameraHMR", "HumanFoV", "MiVOLO"]
)
def test_every_teacher_calls_a_wrong_local_path_not_a_file_or_directory(
    teacher: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dto_models

    (tmp_path / "weights").mkdir()
    monkeypatch.chdir(tmp_path)
    from_pretrained = getattr(dto_models, teacher).from_pretrained
    for bad in ("weights/missing", "ckpt/cam_model_cleaned.ckpt", str(tmp_path / "nope")):
        with pytest.raises(FileNotFoundError, match=f"^{re.escape(bad)}: not a file or directory"):
            from_pretrained(bad)
    with pytest.raises(FileNotFoundError, match=r"^org/nothing: not a file or directory, and as"):
        from_pretrained("org/nothing")  # a Hub id, but not in the (empty, offline) cache
