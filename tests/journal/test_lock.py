"""Only one writer at a time, in this process or any other."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from events.journal import FsyncPolicy, JournalLocked, open_file_store, open_reader

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 30


def run_python(code: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


OPEN_AND_APPEND = """
    import sys
    from events.journal import open_file_store
    with open_file_store(sys.argv[1]) as store:
        store.append([(store.next_seq, b"from the child")])
    print("appended")
"""


def test_a_second_open_in_the_same_process_is_refused(tmp_path):
    with open_file_store(tmp_path, fsync=FsyncPolicy.NONE) as store:
        store.append([(1, b"first")])
        with pytest.raises(JournalLocked) as raised:
            open_file_store(tmp_path)
        assert raised.value.pid == os.getpid()
        assert str(raised.value) == (
            f"journal directory {tmp_path} is already open for writing by pid {os.getpid()} "
            "(this process: another store object still holds it); only one writer may hold it "
            "at a time"
        )
        store.append([(2, b"second")])  # the refused opener did not disturb the holder
    with open_file_store(tmp_path) as reopened:
        assert list(reopened.read()) == [(1, b"first"), (2, b"second")]


def test_the_lock_file_names_the_holder(tmp_path):
    with open_file_store(tmp_path, fsync=FsyncPolicy.NONE):
        assert (tmp_path / "LOCK").read_text() == f"{os.getpid()}\n"


def test_another_process_is_refused_while_the_journal_is_open(tmp_path):
    with open_file_store(tmp_path, fsync=FsyncPolicy.NONE) as store:
        result = run_python(OPEN_AND_APPEND, str(tmp_path))
        assert result.returncode != 0
        assert "JournalLocked" in result.stderr
        assert (
            f"journal directory {tmp_path} is already open for writing by pid {os.getpid()}"
            in result.stderr
        )
        assert store.next_seq == 1
        assert list(store.read()) == []


def test_after_close_another_process_can_write(tmp_path):
    with open_file_store(tmp_path, fsync=FsyncPolicy.NONE) as store:
        store.append([(1, b"from the parent")])
    result = run_python(OPEN_AND_APPEND, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "appended\n"
    with open_file_store(tmp_path) as store:
        assert list(store.read()) == [(1, b"from the parent"), (2, b"from the child")]


def test_the_lock_dies_with_its_process(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys
                from events.journal import open_file_store
                store = open_file_store(sys.argv[1])
                print("holding", flush=True)
                sys.stdin.read()
                """
            ),
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        with pytest.raises(JournalLocked, match=f"already open for writing by pid {holder.pid};"):
            open_file_store(tmp_path)
        assert list(open_reader(tmp_path).read()) == [], "readers need no lock"
    finally:
        holder.kill()
        holder.wait(timeout=TIMEOUT_SECONDS)
        if holder.stdin is not None:
            holder.stdin.close()
        if holder.stdout is not None:
            holder.stdout.close()
    with open_file_store(tmp_path) as store:  # the kernel released the killed holder's lock
        assert store.next_seq == 1
        # Nothing was torn, but the holder died without closing: that is still reported.
        assert store.recovery is not None
        assert store.recovery.truncated_bytes == 0
        assert store.recovery.last_seq == 0
        assert f"the previous writer (pid {holder.pid}) did not close" in store.recovery.reason
    with open_file_store(tmp_path) as store:
        assert store.recovery is None, "a clean close leaves nothing to report"


def test_closing_twice_releases_once_and_reopening_works(tmp_path):
    store = open_file_store(tmp_path, fsync=FsyncPolicy.NONE)
    store.close()
    store.close()
    with open_file_store(tmp_path) as again:
        assert again.next_seq == 1
        with pytest.raises(JournalLocked):
            open_file_store(tmp_path)
        store.close()  # an old, closed store must not release the new holder's lock
        with pytest.raises(JournalLocked):
            open_file_store(tmp_path)
