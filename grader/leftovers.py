"""The grader's temporary folders, named after the process that made them, so the next run can
remove those of a run that was killed (SIGKILL, the OOM killer) before it could clean up."""

import os
import re
import shutil
import tempfile
from pathlib import Path

import psutil

PREFIX = "resnet-grader-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)\.([0-9a-z]+)-")


def _stamp(pid):
    """The start time of process `pid` in centiseconds, base 36: with the pid, it names a process even
    after the pid is reused. Short, because IPC socket paths inside the folder must stay under 108 bytes."""
    n, digits = int(psutil.Process(pid).create_time() * 100), ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return digits or "0"


def new_folder():
    """A fresh private folder in the temporary directory, named after this process."""
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{pid}.{_stamp(pid)}-"))


def _owner_alive(pid, stamp):
    try:
        return _stamp(pid) == stamp
    except psutil.Error:
        return False


def stale_folders(tmpdir=None):
    """This user's grader folders whose owning process is gone."""
    tmpdir = Path(tmpdir or tempfile.gettempdir())
    found = []
    for path in tmpdir.glob(PREFIX + "*"):
        m = _NAME.match(path.name)
        try:
            mine = path.is_dir() and not path.is_symlink() and path.lstat().st_uid == os.geteuid()
        except OSError:
            continue
        if m and mine and not _owner_alive(int(m.group(1)), m.group(2)):
            found.append(path)
    return found


def remove_stale(tmpdir=None):
    """Remove the folders left by grader runs that were killed; return how many were removed."""
    stale = stale_folders(tmpdir)
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)
