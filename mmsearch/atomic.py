"""Atomic writes: a directory or a file is built beside its target and swapped in whole.

A reader (the app, a second build) sees the old complete directory or the new complete one: never a half, and never
none. The finished build and the target trade places in one step (Linux's ``renameat2`` with ``RENAME_EXCHANGE``), so
the target stays a plain directory, as git, DVC and every reader expect, and a kill at any instant leaves a complete
one in place. Where the filesystem cannot exchange (some network and overlay filesystems), the swap is two renames
with an instant between them when the target is absent; ``recover`` puts the newest complete build back at the next
start or build, so even then a kill loses nothing.

Beside a target ``X`` a swap leaves, only while it runs, names that carry the process id of the build that made them:

- ``.X.tmp-<pid>-<random>``: being written;
- ``.X.new-<pid>-<random>``: complete, being swapped in (after the exchange: the previous build, being deleted);
- ``.X.old-<pid>``: the previous build between the two renames of a swap that cannot exchange.

Those of a build that is no longer running (killed, or an older mmsearch's ``.X.tmp-*`` and ``.X.old``) are deleted by
the next build of ``X`` once ``X`` is in place.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100
CANNOT_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}
STATES = ("new", "tmp", "old")  # what recover prefers: a finished new build, an older mmsearch's finished one, the last


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yields an empty directory beside ``target``; when the block ends without an exception, its contents replace
    ``target`` in one step, and leftovers of killed builds of ``target`` are deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the finished directory should read like any other
    try:
        yield tmp
        done = tmp.with_name(tmp.name.replace(".tmp-", ".new-", 1))
        os.rename(tmp, done)  # complete from here on: recover may put it in place if the swap is killed
        tmp = done
        swap_in(done, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_leftovers(target)


def swap_in(done: Path, target: Path) -> None:
    """``done`` takes ``target``'s place; the previous ``target``, if any, is deleted."""
    if exchange(done, target):
        _sync(target.parent)
        shutil.rmtree(done, ignore_errors=True)  # it holds the previous build now
        return
    if not os.path.lexists(target):
        os.rename(done, target)
        _sync(target.parent)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    try:
        os.rename(done, target)
    except BaseException:
        if not os.path.lexists(target):
            os.rename(old, target)
        raise
    _sync(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def exchange(a: Path, b: Path) -> bool:
    """Swaps two existing paths in one step; False where ``b`` does not exist or the system cannot exchange."""
    rename2 = getattr(_libc(), "renameat2", None)
    if rename2 is None:
        return False
    if rename2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.ENOENT and os.path.lexists(a):
        return False  # no target yet
    if code in CANNOT_EXCHANGE:
        log.info("%s cannot exchange directories (%s); swapping with two renames", b.parent, os.strerror(code))
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def recover(target: Path, complete: Callable[[Path], bool]) -> Path | None:
    """Where ``target`` is missing because a swap was killed, puts the newest complete build left beside it in its
    place and returns where it was; None when there was nothing to do (``target`` exists, or nothing complete is
    left, or the build that left it is still running and about to finish its swap)."""
    target = Path(target)
    if os.path.lexists(target):
        return None
    found = sorted(
        (STATES.index(state), -path.stat().st_mtime, str(path), pid) for state, path, pid in leftovers(target)
    )
    for _, _, name, pid in found:
        path = Path(name)
        if running(pid) or not path.is_dir() or not complete(path):
            continue
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue  # another process took it first
        except OSError:
            return None  # the target is back (ENOTEMPTY): someone else recovered it
        _sync(target.parent)
        log.warning("%s was missing after an interrupted swap: put back the complete build %s", target, path.name)
        return path
    return None


def remove_leftovers(target: Path) -> list[Path]:
    """Deletes what killed builds of ``target`` left beside it (not while ``target`` is missing: then one of them may
    be all there is, for ``recover``)."""
    target = Path(target)
    if not os.path.lexists(target):
        return []
    removed = []
    for _, path, pid in leftovers(target):
        if running(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        log.info("removed %d leftovers of interrupted builds of %s", len(removed), target)
    return removed


def leftovers(target: Path) -> list[tuple[str, Path, int | None]]:
    """(state, path, process id or None) of each name a swap of ``target`` leaves beside it."""
    prefix = f".{target.name}."
    found = []
    for path in target.parent.iterdir() if target.parent.is_dir() else ():
        if not path.name.startswith(prefix):
            continue
        state, _, tail = path.name[len(prefix) :].partition("-")
        if state in STATES and (tail or state == "old"):  # an older mmsearch left ".X.old", no process id
            found.append((state, path, _pid(tail)))
    return found


def running(pid: int | None) -> bool:
    """Whether the process that left a name may still be working on it (this process counts: a thread may be)."""
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid(tail: str) -> int | None:
    match = re.match(r"(\d+)(-|$)", tail)
    return int(match.group(1)) if match else None


def _sync(directory: Path) -> None:
    """The renames reach the disk (a power cut after the swap keeps it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def atomic_write_text(path: Path, text: str) -> Path:
    """Writes a file beside its target and renames it into place: a reader sees the old file or the new one."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """As atomic_write_text, for bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def atomic_write_npy(path: Path, array) -> Path:
    """A numpy array as a .npy file, written by Python (whose error on a full disk keeps its errno; numpy's own
    writer reports a short write without one) and renamed into place."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_save_figure(fig, out: Path, dpi: int = 110) -> Path:
    """A matplotlib figure saved as a PNG beside its target, renamed into place, and closed."""
    import matplotlib.pyplot as plt

    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    tmp.replace(out)
    return out
