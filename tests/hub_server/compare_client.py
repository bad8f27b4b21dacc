"""Client run in a subprocess (HF_ENDPOINT set): load a dataset from a local folder and from the
Hub endpoint, and print one JSON line saying whether every row and column is identical.

    python tests/hub_server/compare_client.py LOCAL_DIR ORG/NAME CACHE_DIR stream|nostream
"""

import json
import sys

import datasets
import numpy as np


def same(rows: list[dict], reference: list[dict]) -> bool:
    """Identical rows: same keys, shapes, dtypes and values (NaN equal to NaN)."""
    if len(rows) != len(reference):
        return False
    for a, b in zip(rows, reference, strict=True):
        if a.keys() != b.keys():
            return False
        for k in b:
            x, y = np.asarray(a[k]), np.asarray(b[k])
            if x.shape != y.shape or x.dtype != y.dtype:
                return False
            if not np.array_equal(x, y, equal_nan=y.dtype.kind == "f"):
                return False
    return True


def main() -> None:
    local_dir, repo, cache, mode = sys.argv[1:5]
    local = list(
        datasets.load_dataset(local_dir, split="train", cache_dir=f"{cache}/l").with_format("numpy")
    )
    hub = datasets.load_dataset(repo, split="train", cache_dir=f"{cache}/h").with_format("numpy")
    result = {
        "configs": datasets.get_dataset_config_names(repo),
        "normal_equal": same(list(hub), local),
        "rows": len(local),
    }
    if mode == "stream":
        stream = datasets.load_dataset(repo, split="train", streaming=True).with_format("numpy")
        streamed = list(stream)
        result["stream_equal"] = same(streamed, local)
        result["empty_shape"] = [
            list(r["smpl_pose"].shape) for r in streamed if r["num_people"] == 0
        ][:1]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
