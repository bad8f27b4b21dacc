"""Files that are never seen half written: the workspace's one atomic writer.

The data go to a hidden temporary sibling (`.NAME.<random>.tmp`), which is then renamed over the
target. The temporary file is created like any new file, mode 0o666 less the umask (0o644 under
the usual umask 022), not with the owner-only 0o600 of `tempfile.mkstemp`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["write_atomic"]


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *, fsync: bool = False
) -> Path:
    """Write `path` through `write(f)`, `f` a binary file, atomically; returns the path.

    The folder is created when missing. `fsync=True` flushes the data to disk before the rename
    (for files a resumed job trusts after a crash). On any error or interrupt the temporary file
    is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
