"""Client run in a subprocess (HF_ENDPOINT set): load the default config `all` and the first
source's config, every split, from a local folder and from the Hub endpoint, and print one JSON
line saying whether every row and column is identical.

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
    configs = datasets.get_dataset_config_names(repo)
    result = {"configs": configs, "normal_equal": True, "rows": 0}
    if mode == "stream":
        result["stream_equal"] = True
    for config in configs[:2]:  # "all" and the first source: per-source globs work the same way
        local = datasets.load_dataset(local_dir, config, cache_dir=f"{cache}/l")
        hub = datasets.load_dataset(repo, config, cache_dir=f"{cache}/h")
        result.setdefault("splits", {})[config] = sorted(hub)
        for split in local:
            rows = list(local[split].with_format("numpy"))
            result["normal_equal"] &= same(list(hub[split].with_format("numpy")), rows)
            if config == "all":
                result["rows"] += len(rows)
            if mode == "stream" and config == "all":  # per-source globs: checked normally
                stream = datasets.load_dataset(repo, config, split=split, streaming=True)
                streamed = list(stream.with_format("numpy"))
                result["stream_equal"] &= same(streamed, rows)
                result["empty_shape"] = (
                    result.get("empty_shape")
                    or [list(r["smpl_pose"].shape) for r in streamed if r["num_people"] == 0][:1]
                )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
