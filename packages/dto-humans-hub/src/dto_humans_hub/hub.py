"""Publishing datasets and checkpoints to the Hugging Face Hub and downloading them back.

Uploads go through `HfApi.create_repo` + `HfApi.upload_folder` (with `hf_xet`, the default on the
Hub, a pipelined, multi-commit upload that resumes when re-run). On top of that, files already on
the remote with the same content (sha256 for LFS files, the git blob id otherwise) are skipped, so
re-running an interrupted publish only sends what is missing, and the card goes last, after the
data it describes, in one commit with the deletion of remote data files of an older build (a
rebuild with other shard names would otherwise leave them to be read with the new ones).
Tokens come from `HF_TOKEN` or `hf auth login` (or an explicit argument) and are never printed
or logged. `HF_ENDPOINT` (read by huggingface_hub at import) selects a mirror or a test server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    HfApi,
    get_token,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from dto_humans_hub.card import card_configs
from dto_humans_hub.checkpoint import CARD, CONFIG, checkpoint_files, render_model_card
from dto_humans_hub.conventions import (
    ALL_CONFIG,
    ANNOTATIONS,
    FAMILIES,
    IMAGES,
    REPO_ID,
    SOURCE_LABELS,
)
from dto_humans_hub.convert import some
from dto_humans_hub.writer import (
    MANIFEST,
    family_shards,
    file_sha256,
    verify_dataset,
    write_atomic,
)

__all__ = [
    "PublishError",
    "UploadFile",
    "UploadPlan",
    "download_dataset",
    "find_placeholders",
    "plan_checkpoint_upload",
    "plan_dataset_upload",
    "publish",
    "token_source",
]

logger = logging.getLogger(__name__)

DATASET_PATTERNS = ("README.md", MANIFEST, "data/*/*/*.parquet", "figures/*.png")
"""The files of a built dataset that are published (staging and anything else stay local)."""


class PublishError(ValueError):
    """A folder is not fit to publish."""


_HTML_TAGS = (
    "a|abbr|b|br|code|details|div|em|h[1-6]|hr|i|img|kbd|li|ol|p|pre|small|span|strong|sub|"
    "summary|sup|table|tbody|td|th|thead|tr|u|ul"
)
PLACEHOLDER = re.compile(
    rf"<(?!/?(?:{_HTML_TAGS})\b)[A-Za-z][\w.-]*>"  # <org>, <repo>, <tag>, <your-name>
    r"|\{\{.*?\}\}"  # an unrendered template field
    r"|\[More Information Needed\]"  # huggingface_hub's card template filler
    r"|\bORG/NAME\b"
)
"""Text a card template leaves for a person to fill in; none of it may reach the Hub."""


def find_placeholders(text: str) -> list[str]:
    """The distinct unresolved placeholders in a card, in order of appearance."""
    return list(dict.fromkeys(m.group(0) for m in PLACEHOLDER.finditer(text)))


def _check_card(path: Path, fix: str) -> None:
    found = find_placeholders(path.read_text(encoding="utf-8", errors="replace"))
    if found:
        raise PublishError(
            f"{path} still holds placeholders {', '.join(found[:5])}: nothing with placeholders "
            f"goes on the Hub; {fix}"
        )


@dataclass(frozen=True)
class UploadFile:
    """A file to upload: path in the repo, size (bytes), sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class UploadPlan:
    """What `publish` would send: the folder, the target repo, and the files."""

    folder: Path
    repo_id: str
    repo_type: Literal["dataset", "model"]
    files: tuple[UploadFile, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def describe(self) -> str:
        """A human-readable listing (no token, nothing secret)."""
        lines = [f"{self.repo_type} repo {self.repo_id} <- {self.folder}"]
        lines += [f"  {f.path}  {f.size} bytes  sha256 {f.sha256[:12]}" for f in self.files]
        lines.append(f"  {len(self.files)} files, {self.total_bytes} bytes")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _git_blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise PublishError(f"repo id must be ORG/NAME, got {repo_id!r}")


def plan_dataset_upload(root: str | os.PathLike[str], repo_id: str) -> UploadPlan:
    """Check a built dataset (manifest checksums, card configs and counts, no loading script)
    and list the files to publish; raises PublishError or DatasetVerificationError."""
    _check_repo_id(repo_id)
    root = Path(root)
    manifest = verify_dataset(root)
    if ANNOTATIONS not in manifest["families"]:
        raise PublishError(f"{root}: no {ANNOTATIONS!r} config built")
    if not (root / "README.md").is_file():
        raise PublishError(f"{root}: no README.md (dataset card); run `dto-humans-hub stats`")
    annotations = manifest["families"][ANNOTATIONS]
    if annotations.get("synthetic") and repo_id.lower() == REPO_ID.lower():
        inputs = [f["name"] for f in annotations["inputs"] if f.get("synthetic")]
        raise PublishError(
            f"{root} was built from synthetic inputs (fixture files, or DTO runs on synthetic "
            f"scenes or with random teacher weights: {some(inputs)}): it must not be "
            f"published as {REPO_ID}, the real dataset; publish it under another repo id, or "
            "build from the released files"
        )
    _check_card(
        root / "README.md", f"re-render it with the repo id: `dto-humans-hub stats {root} --repo "
        f"{repo_id}`",
    )  # fmt: skip
    card = DatasetCard.load(root / "README.md").data.to_dict()
    declared = {c["config_name"] for c in card.get("configs", [])}
    expected = {c.name: c for c in card_configs(manifest)}
    if declared != set(expected):
        raise PublishError(
            f"{root}/README.md declares configs {sorted(declared)} but the manifest has "
            f"{sorted(expected)}; re-render the card (`dto-humans-hub stats`)"
        )
    infos = card.get("dataset_info", [])
    for info in infos if isinstance(infos, list) else [infos]:
        config = expected[info.get("config_name", ALL_CONFIG)]
        for split in info.get("splits", []):
            rows = sum(s["num_rows"] for s in config.shards.get(split["name"], []))
            if split["num_examples"] != rows:
                raise PublishError(
                    f"{root}/README.md says {config.name}/{split['name']} has "
                    f"{split['num_examples']} rows, the shards hold {rows}; re-render the card "
                    "(`dto-humans-hub stats`)"
                )
    scripts = sorted(p.name for p in root.glob("*.py"))
    if scripts:
        raise PublishError(f"{root}: Python files at the root {scripts} would be taken for a "
                           "dataset loading script, which datasets >= 4 refuses")  # fmt: skip
    checksums = {s["path"]: s["sha256"] for f in FAMILIES for s in family_shards(manifest, f)}
    files = []
    for pattern in DATASET_PATTERNS:
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            sha = checksums.get(rel) or file_sha256(path)
            files.append(UploadFile(rel, path.stat().st_size, sha))
    planned = {f.path for f in files}
    others = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.relative_to(root).as_posix() not in planned
    )
    notes = (f"not published (not part of a dataset): {others}",) if others else ()
    return UploadPlan(root, repo_id, "dataset", tuple(files), notes)


def plan_checkpoint_upload(directory: str | os.PathLike[str], repo_id: str) -> UploadPlan:
    """Check a checkpoint folder (safetensors + config.json, no pickles) and list its files."""
    _check_repo_id(repo_id)
    directory = Path(directory)
    files = [
        UploadFile(p.relative_to(directory).as_posix(), p.stat().st_size, file_sha256(p))
        for p in checkpoint_files(directory)
    ]
    if (directory / CARD).is_file():
        _check_card(
            directory / CARD,
            f"fill them in, or delete {CARD} and publish generates a card for {repo_id}",
        )
    notes = () if (directory / CARD).is_file() else (f"no {CARD}: a model card is generated",)
    return UploadPlan(directory, repo_id, "model", tuple(files), notes)


def token_source() -> str:
    """Where the token would come from, without revealing it."""
    if os.environ.get("HF_TOKEN"):
        return "the HF_TOKEN environment variable"
    return "the stored `hf auth login` token" if get_token() else "none (anonymous)"


def _unchanged(api: HfApi, plan: UploadPlan, revision: str | None) -> set[str]:
    """Paths whose remote content already equals the local file."""
    try:
        remote = api.get_paths_info(
            plan.repo_id, [f.path for f in plan.files], repo_type=plan.repo_type, revision=revision
        )
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
        return set()
    local = {f.path: f for f in plan.files}
    same = set()
    for entry in remote:
        mine = local.get(entry.path)
        if mine is None or getattr(entry, "size", None) != mine.size:
            continue
        lfs = getattr(entry, "lfs", None)
        if lfs is not None:
            if lfs.sha256 == mine.sha256:
                same.add(entry.path)
        elif entry.blob_id == _git_blob_id(plan.folder / entry.path):
            same.add(entry.path)
    return same


def publish(
    plan: UploadPlan,
    *,
    revision: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> list[str]:
    """Create the repo if needed and upload the plan's files that differ from the remote, data
    before the card. Returns the uploaded paths (empty if the remote is up to date)."""
    api = HfApi(token=token)
    api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
    if plan.repo_type == "model" and not (plan.folder / CARD).is_file():
        config = json.loads((plan.folder / CONFIG).read_text())
        text = str(render_model_card(config, repo_id=plan.repo_id))
        write_atomic(plan.folder / CARD, lambda f: f.write(text.encode()))
        plan = plan_checkpoint_upload(plan.folder, plan.repo_id)
    same = _unchanged(api, plan, revision)
    todo = [f.path for f in plan.files if f.path not in same]
    stale = _stale(api, plan, revision)
    logger.info("%d files up to date, %d to upload, %d to delete", len(same), len(todo), len(stale))
    message = commit_message or f"Upload {plan.repo_type} with dto-humans-hub"
    data = [p for p in todo if p != CARD]
    if data:
        api.upload_folder(
            folder_path=plan.folder,
            repo_id=plan.repo_id,
            repo_type=plan.repo_type,
            revision=revision,
            allow_patterns=data,
            commit_message=message,
        )
    # the card and the removal of files of an older build: one commit, after the data
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationDelete(path_in_repo=p) for p in stale
    ]
    if CARD in todo:
        operations.append(CommitOperationAdd(CARD, str(plan.folder / CARD)))
    if operations:
        api.create_commit(
            plan.repo_id,
            operations,
            commit_message=message,
            repo_type=plan.repo_type,
            revision=revision,
        )
    return todo


def _stale(api: HfApi, plan: UploadPlan, revision: str | None) -> list[str]:
    """Remote data files (dataset shards and figures, checkpoint weights) the plan does not hold:
    left from an older build, they would be read with the new ones."""
    try:
        remote = api.list_repo_files(plan.repo_id, repo_type=plan.repo_type, revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return []
    mine = {f.path for f in plan.files}
    if plan.repo_type == "dataset":
        ours = [p for p in remote if p.startswith(("data/", "figures/"))]
    else:
        ours = [p for p in remote if p.endswith((".safetensors", ".safetensors.index.json"))]
    return sorted(p for p in ours if p not in mine)


def _config_patterns(config: str) -> str:
    """The shard folder of a card config: `all`, a source name or `images`."""
    if config == ALL_CONFIG:
        return f"data/{ANNOTATIONS}/*/*"
    if config in SOURCE_LABELS:
        return f"data/{ANNOTATIONS}/{config}/*"
    if config == IMAGES:
        return f"data/{IMAGES}/*/*"
    raise PublishError(f"unknown config {config!r}: one of {[ALL_CONFIG, *SOURCE_LABELS, IMAGES]}")


def download_dataset(
    repo_id: str,
    *,
    local_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    configs: tuple[str, ...] = (ALL_CONFIG,),
    local_files_only: bool = False,
) -> Path:
    """Download the card, manifest, figures and the given configs' shards (`snapshot_download`)
    and check every downloaded shard against the manifest's sha256. Returns the folder."""
    patterns = [_config_patterns(c) for c in configs]
    path = Path(
        snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            local_dir=local_dir,
            allow_patterns=["README.md", MANIFEST, "figures/*", *patterns],
            local_files_only=local_files_only,
        )
    )
    manifest = json.loads((path / MANIFEST).read_text())
    declared = {c.name: c for c in card_configs(manifest)}
    for config in configs:
        if config not in declared:
            raise PublishError(f"{repo_id}: no {config!r} config (has {sorted(declared)})")
        for shards in declared[config].shards.values():
            for shard in shards:
                file = path / shard["path"]
                if not file.is_file() or file_sha256(file) != shard["sha256"]:
                    raise PublishError(f"{repo_id}: {shard['path']} differs from the manifest")
    return path
