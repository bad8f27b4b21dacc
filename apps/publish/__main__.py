"""apps/publish: put a built DTO-Humans folder or a checkpoint folder on the Hugging Face Hub.

    uv run apps/publish dataset DIR [--repo ORG/NAME] [--revision REV] [--private] [--dry-run]
    uv run apps/publish checkpoint DIR --repo ORG/NAME [--revision REV] [--private] [--dry-run]

`dataset` checks DIR against its manifest (sha256 of every shard), its card (configs, row
counts, no unresolved placeholders such as <org>) and the no-loading-script rule, refuses a build
of synthetic inputs under the real dataset's repo id, then uploads README.md,
manifest.json, data/ and figures/. --repo defaults to the dataset's home, REPO_ID. `checkpoint`
checks for safetensors weights and config.json (pickle weights are refused) and a card without
placeholders, and generates a model card if DIR has none. Both create the repo if needed, upload
only files that differ from the remote (re-running an interrupted publish resumes it) and delete
remote data files the folder no longer has, the card last. --dry-run runs every check, lists what
would be uploaded and contacts nothing.

The token comes from HF_TOKEN or `hf auth login`; it is never printed. HF_ENDPOINT selects another
Hub-compatible server.
"""

from __future__ import annotations

import argparse
import logging
import sys

try:
    from huggingface_hub.errors import HfHubHTTPError

    from dto_humans_hub.checkpoint import CheckpointError
    from dto_humans_hub.conventions import REPO_ID
    from dto_humans_hub.hub import (
        PublishError,
        plan_checkpoint_upload,
        plan_dataset_upload,
        publish,
        token_source,
    )
    from dto_humans_hub.writer import DatasetVerificationError
except ModuleNotFoundError as missing:  # the light `uv run` install
    raise SystemExit(
        f"apps/publish: {missing.name} is not installed: this app needs the whole workspace; "
        "run `uv run --all-packages apps/publish ...` once (later a plain `uv run` keeps it)"
    ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="apps/publish",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=["dataset", "checkpoint"])
    parser.add_argument("dir", help="built dataset folder, or checkpoint folder")
    parser.add_argument(
        "--repo", help=f"ORG/NAME on the Hub (datasets: default {REPO_ID}; checkpoints: required)"
    )
    parser.add_argument("--revision", help="branch to commit to (default: main)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.repo is None:
        if args.kind == "checkpoint":
            parser.error("checkpoint: give --repo ORG/NAME (the model repository)")
        args.repo = REPO_ID

    try:
        if args.kind == "dataset":
            plan = plan_dataset_upload(args.dir, args.repo)
        else:
            plan = plan_checkpoint_upload(args.dir, args.repo)
    except (PublishError, CheckpointError, DatasetVerificationError, OSError) as exc:
        print(f"cannot publish: {exc}", file=sys.stderr)
        return 1
    print(plan.describe())
    if args.dry_run:
        print(f"dry run: nothing uploaded (token would come from {token_source()})")
        return 0
    print(f"uploading with the token from {token_source()}")
    try:
        uploaded = publish(
            plan, revision=args.revision, private=args.private, commit_message=args.message
        )
    except HfHubHTTPError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"cannot publish to {plan.repo_id}: {first} (re-run to resume)", file=sys.stderr)
        return 1
    if uploaded:
        print(f"uploaded {len(uploaded)} files to {plan.repo_type} repo {plan.repo_id}")
    else:
        print(f"{plan.repo_type} repo {plan.repo_id} is up to date: nothing uploaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
