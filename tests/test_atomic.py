"""A directory swap killed at any system call leaves a complete directory, or one that ``recover`` puts back; the next
swap removes what the killed one left. The kills are real: strace's fault injection sends SIGKILL at the n-th call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_program

from mmsearch import atomic

ROOT = Path(__file__).resolve().parents[1]
# Writes a directory of two files through atomic_dir; "rename" as the third argument swaps as a filesystem that cannot
# exchange does (two renames).
WRITER = """
import sys
from pathlib import Path
from mmsearch import atomic
if sys.argv[3] == "rename":
    atomic.exchange = lambda a, b: False
with atomic.atomic_dir(Path(sys.argv[1])) as tmp:
    (tmp / "part").write_text(sys.argv[2])
    (tmp / "manifest.json").write_text(sys.argv[2])
"""
# (swap, system call, which call): every rename, exchange, write and delete of a swap. An exchanging swap renames once
# (written -> finished) and exchanges once; one that cannot renames three times (written -> finished, target -> old,
# finished -> target). Writes: the two files; deletes: the previous build's files, then its folder, after the swap.
KILLS = [
    *[("exchange", call, n) for call, n in (("write", 1), ("write", 2), ("rename", 1), ("renameat2", 1))],
    *[("exchange", call, n) for call, n in (("unlinkat", 1), ("unlinkat", 2), ("rmdir", 1))],
    *[("rename", "rename", n) for n in (1, 2, 3)],
    *[("rename", call, n) for call, n in (("unlinkat", 1), ("rmdir", 1))],
]


def complete(path: Path) -> bool:
    return (path / "manifest.json").exists()


def write(target: Path, text: str, swap: str = "exchange", kill: tuple[str, int] | None = None) -> int:
    command = [sys.executable, "-B", "-c", WRITER, str(target), text, swap]
    if kill is not None:
        call, n = kill
        strace = need_program("strace")
        command = [strace, "-f", "-qq", "-o", "/dev/null", "-e", f"inject={call}:signal=KILL:when={n}", *command]
    env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, env=env, cwd=ROOT, timeout=60, capture_output=True).returncode


def state(target: Path) -> str:
    """The one version a reader sees, checked whole: both files say the same."""
    part, manifest = (target / "part").read_text(), (target / "manifest.json").read_text()
    assert part == manifest, f"a half-swapped directory: {part!r} beside {manifest!r}"
    return part


@pytest.mark.parametrize("swap, call, n", KILLS, ids=[f"{s}-{c}-{n}" for s, c, n in KILLS])
def test_a_swap_killed_at_any_call_leaves_a_complete_directory_and_the_next_one_tidies(tmp_path, swap, call, n):
    target = tmp_path / "shop"
    assert write(target, "v1", swap) == 0
    killed = write(target, "v2", swap, kill=(call, n))
    assert killed in (-signal.SIGKILL, 128 + signal.SIGKILL), f"the kill at {call} #{n} did not happen"
    atomic.recover(target, complete)  # what a reader does first (the app's start, its reload, the next build)
    assert state(target) in ("v1", "v2")
    assert write(target, "v3", swap) == 0  # the next build lands and removes what the killed one left
    assert state(target) == "v3" and [p.name for p in tmp_path.iterdir()] == ["shop"]


def test_an_older_mmsearchs_killed_swap_is_put_back_newest_first_then_tidied(tmp_path):
    """The state an older mmsearch left when killed between its two renames: the previous build at ``.shop.old``, the
    new one complete at ``.shop.tmp-<random>``, no ``shop``."""
    target = tmp_path / "shop"
    for name, text in ((".shop.old", "v1"), (".shop.tmp-k2j4x9", "v2")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part").write_text(text)
        (tmp_path / name / "manifest.json").write_text(text)
    (tmp_path / ".shop.tmp-half").mkdir()  # killed while writing: no manifest, never put back
    assert atomic.recover(target, complete).name == ".shop.tmp-k2j4x9"
    assert state(target) == "v2"
    assert atomic.recover(target, complete) is None  # in place: nothing to do
    assert write(target, "v3") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop"]


def test_what_a_running_build_writes_beside_the_target_is_left_alone(tmp_path):
    target = tmp_path / "shop"
    assert write(target, "v1") == 0
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            working = tmp_path / f".shop.tmp-{other.pid}-abc"
            working.mkdir()
            dead = tmp_path / ".shop.new-999999999-abc"  # no such process
            dead.mkdir()
            assert atomic.remove_leftovers(target) == [dead]
            assert working.exists()
        finally:
            other.kill()
    assert atomic.remove_leftovers(target) == [working]


def test_a_missing_target_is_not_tidied_away(tmp_path):
    (tmp_path / ".shop.old").mkdir()
    assert atomic.remove_leftovers(tmp_path / "shop") == [] and (tmp_path / ".shop.old").exists()
