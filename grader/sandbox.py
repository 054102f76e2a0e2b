"""Limits and isolation for the kernel that runs a student's code.

The kernel is started through `unshare` (new network, PID and mount namespaces:
no network, and every process the submission starts dies with the kernel, even
one that calls setsid) and `prlimit` (a cap on its data segment, so a huge
allocation fails with MemoryError near the cap instead of waking the machine's
out-of-memory killer). Where the OS does not allow namespaces (no root, no user
namespaces), the kernel runs without them and the grader kills its process tree.
"""

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass

import psutil

GiB = 1024 ** 3


@dataclass(frozen=True)
class Limits:
    """What one submission's kernel may use. Times in seconds, sizes in bytes."""

    function_timeout: float = 120.0  # one graded function's measurement
    submission_timeout: float = 600.0  # everything, one submission
    definition_timeout: float = 30.0  # one cell of the student's definitions
    startup_timeout: float = 60.0
    memory: int = 4 * GiB
    output: int = 64 * 1024  # stdout/stderr text kept from one cell
    payload: int = 32 * 1024 * 1024  # the measurement data one cell may hand back
    network: bool = False
    run_as: str = ""  # hardened mode: run the kernel as this unprivileged user


@functools.lru_cache(maxsize=None)
def namespaces_available():
    """Whether `unshare` can give the kernel its own network, PID and mount namespaces here."""
    if not shutil.which("unshare"):
        return False
    try:
        done = subprocess.run(["unshare", "-n", "-p", "-f", "-m", "--mount-proc", "--kill-child", "true"],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def kernel_argv(limits):
    """The command that starts one kernel under the limits ({connection_file} filled in by jupyter_client)."""
    argv = []
    if namespaces_available():
        argv += ["unshare", "-p", "-f", "-m", "--mount-proc", "--kill-child"]
        if not limits.network:
            argv.append("-n")
    if limits.run_as:
        argv += ["setpriv", f"--reuid={limits.run_as}", f"--regid={group_of(limits.run_as)}", "--clear-groups"]
    if shutil.which("prlimit"):
        argv += ["prlimit", f"--data={limits.memory}", "--core=0", f"--fsize={256 * 1024 * 1024}"]
    return argv + [sys.executable, "-I", "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def group_of(user):
    import pwd

    return pwd.getpwnam(user).pw_gid


def readable_by_others(paths):
    """The files among `paths` (recursively) that users other than the owner can read: in hardened
    mode the kernel's user must not read the solution or the expected outputs."""
    found = []
    for root in paths:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            if path.stat().st_mode & 0o004:
                found.append(path)
    return found


def kill_tree(pid):
    """Kill a process and every descendant it left behind; return how many were killed."""
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)
    return len(procs)
