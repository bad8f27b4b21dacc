"""Build every workspace package's sdist and wheel into OUT, as the release workflow does, and
check them: one sdist and one wheel per package under packages/, each carrying the root LICENSE.

    uv run --no-project .ci/build_dists.py OUT [--version X.Y.Z]

`--version` (the release tag without its `v`) also checks that every package has that version:
the packages are released in lockstep. `uv build --no-sources` builds as an index would, without
the workspace's source overrides.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check_dists(out: Path, version: str | None) -> list[str]:
    """Problems with the built files in `out`, one line each (empty when all is well)."""
    license_text = (ROOT / "LICENSE").read_bytes()
    problems = []
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        name = project["name"]
        if version is not None and project["version"] != version:
            problems.append(f"{name}: version {project['version']}, the tag says {version}")
        stem = f"{name.replace('-', '_')}-{project['version']}"
        wheels = sorted(out.glob(f"{stem}-*.whl"))
        sdist = out / f"{stem}.tar.gz"
        if len(wheels) != 1 or not sdist.is_file():
            problems.append(f"{name}: expected {stem}.tar.gz and one {stem}-*.whl in {out}")
            continue
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = f"{stem}.dist-info/licenses/LICENSE"
            if member not in wheel.namelist() or wheel.read(member) != license_text:
                problems.append(f"{wheels[0].name}: no {member} equal to the root LICENSE")
        with tarfile.open(sdist) as tar:
            try:
                sdist_license = tar.extractfile(f"{stem}/LICENSE").read()
            except KeyError:
                sdist_license = None
            if sdist_license != license_text:
                problems.append(f"{sdist.name}: no {stem}/LICENSE equal to the root LICENSE")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", help="the release version every package must have")
    args = parser.parse_args(argv)

    uv = os.environ.get("UV", "uv")
    build = [uv, "build", "--all-packages", "--no-sources", "-q", "-o", str(args.out)]
    if code := subprocess.run(build, cwd=ROOT).returncode:
        print(f"{' '.join(build[1:])} failed (exit status {code}): see above", file=sys.stderr)
        return code
    problems = check_dists(args.out, args.version)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        built = sorted(p.name for p in args.out.glob("*") if p.suffix in (".whl", ".gz"))
        print(f"every wheel and sdist carries the LICENSE: {' '.join(built)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
