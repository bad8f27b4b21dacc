"""A small Hub-protocol test server: only the routes `huggingface_hub` 2.x and `datasets` 5.x call
for create_repo, upload_folder (classic preupload / LFS batch / NDJSON commit protocol, so clients
run with HF_HUB_DISABLE_XET=1), hf_hub_download, snapshot_download, HfFileSystem (tree,
paths-info, ranged reads) and load_dataset, normal and streaming.

    python tests/hub_server/server.py --root DIR [--port 0]

Binds 127.0.0.1; prints `PORT <n>` when it is ready. Repositories live in memory (one linear
history per repo, branch `main`), blobs in DIR/blobs. Write routes need an `Authorization: Bearer`
header (any token). Test hooks: `POST /_control {"fail_commits": n}` makes the next n commits
answer 500 (after the blobs were uploaded); `GET /_log` returns the requests served.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

REGULAR_SUFFIXES = (".md", ".json", ".yaml", ".txt")
"""Files the server asks to be sent inline ("regular"); everything else goes through LFS, as the
Hub does for Parquet, safetensors and images."""

REPO_PREFIX = {"dataset": "datasets/", "model": ""}


@dataclass
class Repo:
    """One repository: commits (oldest first), each mapping path -> file entry."""

    repo_type: str
    repo_id: str
    commits: list[dict] = field(default_factory=list)

    @property
    def head(self) -> dict:
        return self.commits[-1]

    def commit(self, revision: str) -> dict | None:
        if revision in ("main", "refs/heads/main"):
            return self.head
        for c in self.commits:
            if c["sha"] == revision:
                return c
        return None


def _not_found(code: str, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=404, headers={"X-Error-Code": code})


def make_app(root: Path) -> FastAPI:
    app = FastAPI()
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    repos: dict[tuple[str, str], Repo] = {}
    state = {"fail_commits": 0, "log": []}

    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        state["log"].append({
            "method": request.method,
            "path": request.url.path,
            "range": request.headers.get("range"),
            "auth": "authorization" in request.headers,
        })  # fmt: skip
        return await call_next(request)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization", "").startswith("Bearer ")

    def repo_or_404(repo_type: str, org: str, name: str) -> Repo | Response:
        repo = repos.get((repo_type, f"{org}/{name}"))
        return repo if repo is not None else _not_found("RepoNotFound", f"{org}/{name}")

    def entry(path: str, f: dict) -> dict:
        out = {"type": "file", "oid": f["oid"], "size": f["size"], "path": path}
        if f["lfs"]:
            out["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": 134}
        return out

    def listing(commit: dict, prefix: str, recursive: bool) -> list[dict] | None:
        prefix = prefix.strip("/")
        files, dirs = [], set()
        for path, f in sorted(commit["files"].items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :] if prefix else path
            parts = rest.split("/")
            for i in range(1, len(parts)):
                if recursive or i == 1:
                    dirs.add("/".join(([prefix] if prefix else []) + parts[:i]))
            if recursive or len(parts) == 1:
                files.append(entry(path, f))
        if prefix and not files and not dirs:
            return None
        return [
            {"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(dirs)
        ] + files

    @app.post("/_control")
    async def control(request: Request):
        state.update(await request.json())
        return {}

    @app.get("/_log")
    async def log():
        return state["log"]

    @app.post("/api/validate-yaml")
    async def validate_yaml():
        return {"errors": [], "warnings": []}

    @app.post("/api/repos/create")
    async def create_repo(request: Request):
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body['organization']}/{body['name']}"
        url = f"{base(request)}/{REPO_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in repos:
            return JSONResponse({"error": "exists", "url": url}, status_code=409)
        sha = hashlib.sha1(f"{repo_type}/{repo_id}/init".encode()).hexdigest()
        repos[repo_type, repo_id] = Repo(repo_type, repo_id, [{"sha": sha, "files": {}}])
        return {"url": url}

    def info(repo: Repo, commit: dict) -> dict:
        return {
            "id": repo.repo_id, "sha": commit["sha"], "private": False, "disabled": False,
            "gated": False, "tags": [], "downloads": 0, "likes": 0,
            "lastModified": "2025-01-01T00:00:00.000Z", "createdAt": "2025-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p} for p in sorted(commit["files"])],
        }  # fmt: skip

    for repo_type in ("dataset", "model"):
        api = f"/api/{repo_type}s/{{org}}/{{name}}"
        repo_prefix = f"/{REPO_PREFIX[repo_type]}{{org}}/{{name}}"

        def routes(
            repo_type: str = repo_type, api: str = api, repo_prefix: str = repo_prefix
        ) -> None:
            @app.get(api)
            @app.get(api + "/revision/{revision:path}")
            async def repo_info(org: str, name: str, revision: str = "main"):
                repo = repo_or_404(repo_type, org, name)
                if isinstance(repo, Response):
                    return repo
                commit = repo.commit(revision)
                if commit is None:
                    return _not_found("RevisionNotFound", revision)
                return info(repo, commit)

            @app.post(api + "/preupload/{revision:path}")
            async def preupload(org: str, name: str, revision: str, request: Request):
                body = await request.json()
                return {"files": [{
                    "path": f["path"], "shouldIgnore": False,
                    "uploadMode": "regular" if f["path"].endswith(REGULAR_SUFFIXES) else "lfs",
                } for f in body["files"]]}  # fmt: skip

            @app.post(repo_prefix + ".git/info/lfs/objects/batch")
            async def lfs_batch(org: str, name: str, request: Request):
                if not authorized(request):
                    return JSONResponse({"error": "unauthorized"}, status_code=401)
                body = await request.json()
                objects = []
                for obj in body["objects"]:
                    out = {"oid": obj["oid"], "size": obj["size"]}
                    if not (blobs / obj["oid"]).is_file():
                        href = f"{base(request)}/_lfs/{obj['oid']}"
                        out["actions"] = {"upload": {"href": href}}
                    objects.append(out)
                return JSONResponse(
                    {"transfer": "basic", "objects": objects},
                    media_type="application/vnd.git-lfs+json",
                )

            @app.post(api + "/commit/{revision:path}")
            async def commit(org: str, name: str, revision: str, request: Request):
                if not authorized(request):
                    return JSONResponse({"error": "unauthorized"}, status_code=401)
                repo = repo_or_404(repo_type, org, name)
                if isinstance(repo, Response):
                    return repo
                if state["fail_commits"] > 0:
                    state["fail_commits"] -= 1
                    return JSONResponse({"error": "injected failure"}, status_code=500)
                files = dict(repo.head["files"])
                header = {}
                for line in (await request.body()).decode().splitlines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    key, value = item["key"], item["value"]
                    if key == "header":
                        header = value
                    elif key == "file":
                        data = base64.b64decode(value["content"])
                        sha256 = hashlib.sha256(data).hexdigest()
                        (blobs / sha256).write_bytes(data)
                        oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                        files[value["path"]] = {
                            "sha256": sha256,
                            "size": len(data),
                            "oid": oid,
                            "lfs": False,
                        }
                    elif key == "lfsFile":
                        if not (blobs / value["oid"]).is_file():
                            return JSONResponse(
                                {"error": f"missing LFS {value['oid']}"}, status_code=400
                            )
                        files[value["path"]] = {
                            "sha256": value["oid"], "size": value["size"],
                            "oid": hashlib.sha1(value["oid"].encode()).hexdigest(), "lfs": True,
                        }  # fmt: skip
                    elif key == "deletedFile":
                        files.pop(value["path"], None)
                    elif key == "deletedFolder":
                        folder = value["path"].rstrip("/") + "/"
                        files = {p: f for p, f in files.items() if not p.startswith(folder)}
                seed = f"{repo.head['sha']}{header}{sorted(files.items())}{time.time_ns()}"
                sha = hashlib.sha1(seed.encode()).hexdigest()
                repo.commits.append({"sha": sha, "files": files})
                url = f"{base(request)}/{REPO_PREFIX[repo_type]}{repo.repo_id}/commit/{sha}"
                return {"commitUrl": url, "commitOid": sha, "pullRequestUrl": None}

            @app.get(api + "/tree/{revision}")
            @app.get(api + "/tree/{revision}/{path:path}")
            async def tree(
                org: str, name: str, revision: str, path: str = "", recursive: bool = False
            ):
                repo = repo_or_404(repo_type, org, name)
                if isinstance(repo, Response):
                    return repo
                commit = repo.commit(revision)
                if commit is None:
                    return _not_found("RevisionNotFound", revision)
                entries = listing(commit, path, recursive)
                if entries is None:
                    return _not_found("EntryNotFound", path)
                return entries

            @app.post(api + "/paths-info/{revision:path}")
            async def paths_info(org: str, name: str, revision: str, request: Request):
                repo = repo_or_404(repo_type, org, name)
                if isinstance(repo, Response):
                    return repo
                commit = repo.commit(revision)
                if commit is None:
                    return _not_found("RevisionNotFound", revision)
                form = await request.form()
                paths = form.getlist("paths") if form else []
                if not paths:
                    paths = (await request.json()).get("paths", [])
                out = []
                for p in paths:
                    p = p.strip("/")
                    if p in commit["files"]:
                        out.append(entry(p, commit["files"][p]))
                    elif any(f.startswith(p + "/") for f in commit["files"]):
                        out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": p})
                return out

            @app.api_route(repo_prefix + "/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
            async def resolve(org: str, name: str, revision: str, path: str, request: Request):
                repo = repo_or_404(repo_type, org, name)
                if isinstance(repo, Response):
                    return repo
                commit = repo.commit(revision)
                if commit is None:
                    return _not_found("RevisionNotFound", revision)
                f = commit["files"].get(path)
                if f is None:
                    return _not_found("EntryNotFound", path)
                etag = f'"{f["sha256"] if f["lfs"] else f["oid"]}"'
                headers = {
                    "X-Repo-Commit": commit["sha"], "ETag": etag, "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream",
                }  # fmt: skip
                if f["lfs"]:
                    headers["X-Linked-Etag"] = etag
                    headers["X-Linked-Size"] = str(f["size"])
                data = (blobs / f["sha256"]).read_bytes()
                status, body = 200, data
                spec = request.headers.get("range")
                if spec and spec.startswith("bytes="):
                    start_s, _, end_s = spec[6:].partition("-")
                    if start_s:
                        start = int(start_s)
                        end = min(int(end_s), len(data) - 1) if end_s else len(data) - 1
                    else:  # suffix range: the last N bytes
                        start, end = max(len(data) - int(end_s), 0), len(data) - 1
                    body = data[start : end + 1]
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                headers["Content-Length"] = str(len(body))
                if request.method == "HEAD":
                    return Response(status_code=status, headers=headers)
                return Response(content=body, status_code=status, headers=headers)

        routes()

    @app.put("/_lfs/{oid}")
    async def lfs_upload(oid: str, request: Request):
        data = await request.body()
        if hashlib.sha256(data).hexdigest() != oid:
            return JSONResponse({"error": "sha256 mismatch"}, status_code=400)
        (blobs / oid).write_bytes(data)
        return {}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(make_app(args.root), log_level="warning"))
    server.run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
