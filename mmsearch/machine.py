"""What a command tells a person when the machine, not the input, stops it: a full disk, a missing permission, a
read-only filesystem. One line naming what and where, instead of a traceback; the command exits 2 and its atomic
writes leave nothing half-written (atomic.py)."""

from __future__ import annotations

import errno
import re

ADVICE = {
    errno.ENOSPC: "no space left on the device: free some, or point --data-dir and --index at another disk",
    errno.EDQUOT: "the disk quota is used up: free some, or point --data-dir and --index elsewhere",
    errno.EACCES: "permission denied: run as a user who may write there, or point --data-dir and --index elsewhere",
    errno.EPERM: "not permitted: run as a user who may write there, or point --data-dir and --index elsewhere",
    errno.EROFS: "the filesystem is read-only: point --data-dir and --index at a writable one",
}
# How libraries that wrap the system's error say the same (Faiss, SQLite): (words in the message, errno).
WORDED = [
    ("No space left on device", errno.ENOSPC),
    ("database or disk is full", errno.ENOSPC),
    ("Permission denied", errno.EACCES),
    ("Read-only file system", errno.EROFS),
]


# numpy's tofile on a full disk: "61440 requested and 26560 written", no errno (the system's error is lost on the way).
SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def machine_failure(exc: BaseException) -> str | None:
    """The line for a person when ``exc`` (or what caused it) is the machine's doing; None for anything else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "errno", None)
        if isinstance(exc, OSError) and code in ADVICE:
            where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
            return f"{ADVICE[code]}{where}; the served index is unchanged"
        for words, code in WORDED:
            if words in str(exc):  # a library's own wording of the system's error: its text is for its developers
                return f"{ADVICE[code]}; the served index is unchanged"
        if isinstance(exc, OSError) and SHORT_WRITE.search(str(exc)):
            return f"{ADVICE[errno.ENOSPC]}; the served index is unchanged"
        exc = exc.__cause__ or exc.__context__
    return None
