"""A command stopped by the machine says what and where in one line; anything else keeps its traceback."""

import errno

from mmsearch.machine import machine_failure


def test_the_machines_reasons_are_worded_for_people_whoever_raised_them():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/ix/.shop.tmp-1-x/vectors.npy")
    assert machine_failure(full).startswith("no space left on the device") and "vectors.npy" in machine_failure(full)
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/index")
    assert "permission denied" in machine_failure(denied) and "/srv/index" in machine_failure(denied)
    assert "read-only" in machine_failure(OSError(errno.EROFS, "Read-only file system"))
    try:  # a library that wraps the system's error in its own (Faiss raises RuntimeError with the words)
        try:
            raise RuntimeError(
                "Error in faiss::write_index: write error in /ix/.shop.new/faiss.index: No space left on device"
            )
        except RuntimeError as inner:
            raise ValueError("could not save the index") from inner
    except ValueError as outer:
        assert machine_failure(outer) == (
            "no space left on the device: free some, or point --data-dir and --index at another disk; "
            "the served index is unchanged"
        )


def test_a_defect_is_not_mistaken_for_the_machine():
    assert machine_failure(RuntimeError("index out of range")) is None
    assert machine_failure(FileNotFoundError(errno.ENOENT, "No such file or directory", "x")) is None


def test_numpys_short_write_on_a_full_disk_is_a_full_disk():
    from mmsearch.machine import machine_failure

    said = machine_failure(OSError("61440 requested and 26560 written"))
    assert said.startswith("no space left on the device")
