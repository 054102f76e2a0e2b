"""The grader's temporary folders, named after the process that made them, so the next run can
remove those of a run that was killed (SIGKILL, the OOM killer) before it could clean up.

A kernel's folder holds its IPC sockets, and a Unix socket's path holds at most 107 bytes: a
folder goes into the temporary directory only while the sockets' paths fit there, else into the
first short, writable one of SHORT_BASES. Any TMPDIR then works, however long.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import psutil

PREFIX = "resnet-grader-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)\.([0-9a-z]+)-")
SOCKET_PATH_MAX = 107  # bytes in sockaddr_un.sun_path, less its closing NUL
# The longest path inside a folder: "<folder>/sockets/ipc-<port>" (grader.kernel names them so).
SOCKET_TAIL = len("/sockets/ipc-65535")
# PREFIX, a pid (pid_max is at most 2**22: 7 digits), ".", a stamp (8 digits), "-", mkdtemp's 8 characters
FOLDER_NAME_MAX = len(PREFIX) + 7 + 1 + 8 + 1 + 8
SHORT_BASES = ("/tmp", "/var/tmp", "/dev/shm")


class NoRoom(OSError):
    """No folder can hold a kernel's sockets: every candidate is too long, missing or not writable."""


def _stamp(pid):
    """The start time of process `pid` in centiseconds, base 36: with the pid, it names a process even
    after the pid is reused. Short, because IPC socket paths inside the folder must stay under 108 bytes."""
    n, digits = int(psutil.Process(pid).create_time() * 100), ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return digits or "0"


def fits(base):
    """Whether IPC sockets in a grader folder directly inside `base` stay within a socket path's length."""
    return len(os.fsencode(str(base))) + 1 + FOLDER_NAME_MAX + SOCKET_TAIL <= SOCKET_PATH_MAX


def _open_to_others(path):
    """Whether users other than its owner can pass through `path` and every folder above it."""
    path = Path(path).resolve()
    try:
        return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))
    except OSError:
        return False


def bases(for_other_user=False):
    """The folders a grader folder may go into, in order: the temporary directory, then SHORT_BASES.

    `for_other_user`: another (unprivileged) user must reach its contents, so a private base (a
    0700 TMPDIR) does not do.
    """
    found = []
    for base in dict.fromkeys((tempfile.gettempdir(), *SHORT_BASES)):
        if (fits(base) and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK)
                and (not for_other_user or _open_to_others(base))):
            found.append(base)
    return found


def check_room(for_other_user=False):
    """The folder new_folder would use; NoRoom, saying why, where there is none."""
    places = bases(for_other_user)
    if not places:
        raise NoRoom(f"no folder for a kernel's sockets: the temporary directory {tempfile.gettempdir()!r} "
                     f"has a path too long for a Unix socket ({SOCKET_PATH_MAX} bytes at most) or cannot be "
                     f"written{' by another user' if for_other_user else ''}, and so has every one of "
                     f"{', '.join(SHORT_BASES)}; set TMPDIR to a short, writable folder")
    return places[0]


def new_folder(for_other_user=False):
    """A fresh private folder for a kernel, named after this process, where its sockets' paths fit."""
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{pid}.{_stamp(pid)}-", dir=check_room(for_other_user)))


def _owner_alive(pid, stamp):
    try:
        return _stamp(pid) == stamp
    except psutil.Error:
        return False


def stale_folders(tmpdir=None):
    """This user's grader folders whose owning process is gone, in `tmpdir` or wherever new_folder puts them."""
    places = [tmpdir] if tmpdir else dict.fromkeys((tempfile.gettempdir(), *SHORT_BASES))
    found = []
    for path in (p for place in places for p in Path(place).glob(PREFIX + "*")):
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
