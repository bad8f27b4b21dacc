"""Starting local Hub servers for tests and running Hub clients in subprocesses.

Clients run in subprocesses because `huggingface_hub` and `datasets` read HF_ENDPOINT at import.
Servers bind 127.0.0.1 on a free port and are stopped by the context managers.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STARTUP_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 300.0


def _wait_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"server at {url} did not answer in {STARTUP_TIMEOUT_S} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def fake_hub(store: Path) -> Iterator[str]:
    """Run tests/hub_server/server.py; yields its base URL."""
    log = store / "server.log"
    store.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), "--root", str(store)],
            stdout=subprocess.PIPE, stderr=out, text=True,
        )  # fmt: skip
    try:
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server did not start: {line!r} {log.read_text()[-2000:]}")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        _wait_http(f"{url}/_log", proc, log)
        yield url
    finally:
        _stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def olah_mirror(workdir: Path) -> Iterator[str]:
    """Run olah (offline) serving the git repos under workdir/mirrors/{datasets,models}/ORG/NAME."""
    port = free_port()
    config = workdir / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{workdir / "repos"}"\n'
        f'mirrors-path = ["{workdir / "mirrors"}"]\n'
        "[accessibility]\noffline = true\n"
    )
    log = workdir / "olah.log"
    olah = Path(sys.executable).parent / "olah-cli"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(olah), "-c", str(config)], cwd=workdir, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_port(port, proc, log)
        yield url
    finally:
        _stop(proc)


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"olah exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"olah on port {port} did not start in {STARTUP_TIMEOUT_S} s")


def client_env(endpoint: str, home: Path, token: str | None = "test-token") -> dict[str, str]:
    """Environment of a Hub client: endpoint, its own HF_HOME, classic (non-Xet) uploads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(home),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (e.g. [sys.executable, "-c", code]) from the repository root."""
    proc = subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args[:3]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def python(code: str, env: dict[str, str]) -> dict:
    """Run Python code in a subprocess; it prints one JSON object last, which is returned."""
    out = run([sys.executable, "-c", code], env).stdout.strip().splitlines()
    return json.loads(out[-1])


def server_log(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/_log", timeout=10) as r:
        return json.loads(r.read())


def control(url: str, **settings: object) -> None:
    req = urllib.request.Request(
        f"{url}/_control", data=json.dumps(settings).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(req, timeout=10).close()
