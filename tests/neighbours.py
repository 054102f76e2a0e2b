"""Neighbours (issue 22): misbehaving submissions graded in one batch beside correct ones.

What each misbehaving submission does is put into graded functions of the solution (tests/hostile.py's
Hostile): it costs its own author points, which is fine; it must cost no classmate any. Every
behaviour is written out as plain Python here and run by `exec` at the top of the graded function,
once per kernel (a function is measured several times). Every process a behaviour starts carries
`nb-<token>` in its command line, every file it leaves has the token in its name, so the test finds
them from outside, and a looker (a correct submission that raises when it sees any) finds them from
inside.

Safety, on a machine that others share: the fork bomb runs only after a bounded probe inside the
kernel has hit a process cap (a fork failing with EAGAIN before 3000 children); the signals are sent
only from inside a PID namespace of the kernel's own; and the filler, the planter and the memory hog
stop before the machine's MemAvailable falls under FLOOR (a third of its memory, at least 4 GiB) and
before a disk has less than 8 GiB free, so no attack ever reaches the OOM killer. The tests assert
half of the memory, well above the floor, so the floor hides no failure.
"""

import os
import pwd
import tempfile
import threading
import time
from pathlib import Path

import psutil

import notebooks
from hostile import Hostile

# ----------------------------------------------------------------------------- inside the kernel

# Before every behaviour: where a kernel can write, and how close the machine is to its floors.
PRELUDE = r'''
import ctypes, errno, os, re, signal, subprocess, sys, time
TOKEN = "@TOKEN@"
MARK = "nb-" + TOKEN  # on the command line of every process started here, in the name of every file

def meminfo(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0

FLOOR = max(4 << 30, meminfo("MemTotal") // 3)  # never push the machine's MemAvailable under this
DISK_FLOOR = 8 << 30  # nor a disk's free space under this

def short_of_memory():
    return meminfo("MemAvailable") < FLOOR

def mounts():
    """(mount point, file system type, read-only) of every mount this kernel sees."""
    found = []
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4])
        found.append((point, f[f.index("-") + 1], "ro" in f[5].split(",")))
    return found

def fstype(folder):
    best = ("", "")
    for point, kind, _ in mounts():
        if (folder == point or folder.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
            best = (point, kind)
    return best[1]

NAMED = ("/tmp", os.getcwd(), "/dev/shm", "/dev", "/etc/ssh", "/etc/ssl/private")
NOT_FILES = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "devtmpfs", "securityfs", "debugfs",
             "bpf", "tracefs", "pstore", "fusectl", "configfs", "hugetlbfs", "binfmt_misc"}

def roots():
    """The named folders, every writable mount point and every tmpfs: where to try."""
    found = dict.fromkeys(NAMED)
    for point, kind, ro in mounts():
        if kind not in NOT_FILES and (kind == "tmpfs" or not ro):
            found[point] = None
    return [p for p in found if os.path.isdir(p)]

def folders(limit=200):
    """The roots and their subfolders on the same file system (at most `limit` each)."""
    found = {}
    for root in roots():
        try:
            dev = os.stat(root).st_dev
        except OSError:
            continue
        n = 0
        for path, dirs, _ in os.walk(root):
            found[path] = None
            n += 1
            if n >= limit:
                break
            keep = []
            for d in dirs:
                try:
                    if os.lstat(os.path.join(path, d)).st_dev == dev:
                        keep.append(d)
                except OSError:
                    pass
            dirs[:] = keep
    return list(found)

def fill(folder, total, name):
    """Zeros into `folder` in 16 MiB chunks, up to `total` bytes or an error, a new file whenever one
    is too big (RLIMIT_FSIZE); stops at the floors. The bytes written."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    chunk, written, part = bytes(16 << 20), 0, 0
    disk = fstype(folder) != "tmpfs"
    while written < total:
        try:
            fd = os.open(os.path.join(folder, f"{name}-{part}"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except (OSError, MemoryError):
            return written
        too_big = False
        try:
            while written < total:
                if short_of_memory():
                    return written
                if disk:
                    st = os.statvfs(folder)
                    if st.f_bavail * st.f_frsize < DISK_FLOOR:
                        return written
                written += os.write(fd, chunk)
        except OSError as exc:
            if exc.errno != errno.EFBIG:
                return written
            too_big = True
        except MemoryError:
            return written
        finally:
            os.close(fd)
        if not too_big:
            return written
        part += 1
    return written

def own_pid_namespace():
    """Signals to 0 and -1 only from a PID namespace of this kernel's own, never the machine's: there
    the kernel is one of its first processes, and /proc (its namespace's) shows a handful."""
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    if os.getpid() > 10 or len(pids) > 100:
        raise RuntimeError(f"not in a PID namespace of its own (PID {os.getpid()}, {len(pids)} processes): "
                           "signals refused")

def child(body):
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(0)
    return pid
'''

# 1. A fork bomb, only once a bounded linear probe has found a cap on this kernel's processes.
BOMB_PROGRAM = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
BOMB = r'''
pid_max = int(open("/proc/sys/kernel/pid_max").read())
tasks = int(open("/proc/loadavg").read().split()[3].split("/")[1])  # the machine's, not the namespace's
if pid_max - tasks < pid_max // 2 or short_of_memory():
    raise RuntimeError("the machine is short of PIDs or memory already: bomb refused")
# The probe: children that only sleep, one at a time, up to 3000; spawned (vfork and exec), not forked,
# so that none copies the kernel's address space. The bomb runs only if one of them failed with EAGAIN.
probe, capped = [], None
try:
    for i in range(3000):
        try:
            probe.append(os.posix_spawnp("sleep", ["sleep", "30"], {"PATH": "/usr/bin:/bin"}))
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                raise
            capped = i
            break
finally:
    for pid in probe:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in probe:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
if capped is None:
    raise RuntimeError("no process cap: bomb refused")
os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", @BOMB_PROGRAM@, MARK + "-bomb"],
               {"PATH": "/usr/bin:/bin"}, setsid=True)
time.sleep(8)  # beside its neighbours, then the kernel goes; the bomb, in a session of its own, is left to the grader
os._exit(3)
'''.replace("@BOMB_PROGRAM@", repr(BOMB_PROGRAM))

# 2. Memory across processes: 3 children of 3 GiB each, each under the per-process RLIMIT_DATA (a
# fresh interpreter each: a fork of the kernel would bring its own address space into that limit).
HOG_PROGRAM = r'''
import sys, time
import numpy as np
floor = int(sys.argv[1])
def available():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
held = []
for _ in range(12):  # 12 x 256 MiB, touched
    if available() < floor:
        break
    held.append(np.ones(2**25))
time.sleep(4244)
'''
MEMORY = r'''
for _ in range(3):
    subprocess.Popen([sys.executable, "-I", "-c", @HOG@, str(FLOOR), MARK + "-hog"])
time.sleep(8)
'''.replace("@HOG@", repr(HOG_PROGRAM))

# 3. A tmpfs filler: every place it can write, up to 8 GiB each.
FILL = r'''
filled = {folder: fill(folder, 8 << 30, "fill-" + MARK) for folder in roots()}
'''

# 4. Signals: to everything in reach, a stopped group, processes left behind.
SIGNALS_OWN_GROUP = r'''
own_pid_namespace()
def spinner():  # in a session of its own, double-forked
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", "while True: pass", MARK + "-spin"])
os.waitpid(child(spinner), 0)
subprocess.Popen(["sleep", "4244"], start_new_session=True)
child(lambda: (ctypes.CDLL(None).prctl(15, b"rg-kernel-k1", 0, 0, 0), time.sleep(4244)))  # named like a keeper
child(lambda: (time.sleep(1.5), os.kill(0, signal.SIGSTOP)))  # stops the group the kernel is about to leave
try:
    os.setsid()
except OSError:
    pass
time.sleep(4)
os.kill(0, signal.SIGKILL)
'''
SIGNALS_GROUP = r'''
own_pid_namespace()
subprocess.Popen(["sleep", "4244"], start_new_session=True)
os.kill(0, signal.SIGKILL)  # the group the kernel was started in
'''
SIGNALS_ALL = r'''
own_pid_namespace()
child(lambda: os.kill(-1, signal.SIGKILL))
time.sleep(3)
'''

# 5. A planter: a file and a .py that raises into every folder it can write, and 1 GiB into /dev.
PLANT = r'''
planted = []
for folder in folders():
    for name, text in (("planted-" + MARK, "x"), ("planted_" + MARK.replace("-", "_") + ".py",
                                                  "raise RuntimeError('planted code ran')\n")):
        try:
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
            planted.append(folder)
        except (OSError, MemoryError):
            pass
fill("/dev", 1 << 30, "planted-" + MARK + "-1gib")
'''

# A correct submission that loses identity_block if it sees any of it.
LOOK = r'''
seen = []
for folder in folders():
    try:
        seen += [os.path.join(folder, n) for n in os.listdir(folder) if TOKEN in n]
    except OSError:
        pass
if seen:
    raise RuntimeError(f"saw what a neighbour left ({len(seen)}): " + ", ".join(sorted(seen)[:8]))
'''

# What each misbehaving submission does, function by function.
BEHAVIOURS = {
    "planter": {"identity_block": PLANT},
    "filler": {"identity_block": FILL},
    "bomb": {"identity_block": BOMB},
    "signals": {"identity_block": SIGNALS_OWN_GROUP, "convolutional_block": SIGNALS_GROUP, "ResNet50": SIGNALS_ALL},
    "memory": {"identity_block": MEMORY},
}
HOSTILE = tuple(BEHAVIOURS)


def _program(code, token):
    return (PRELUDE + code).replace("@TOKEN@", token)


def _once(name, code, token):
    """Statements that run `code` the first time the function is called in this kernel."""
    flag = f"NB_ONCE_{name}"
    return f"if not os.environ.get({flag!r}):\n    os.environ[{flag!r}] = '1'\n" \
           f"    exec({_program(code, token)!r}, {{'__name__': 'neighbour'}})"


def hostile_notebook(kind, token):
    sources = {f: Hostile(f"{kind}-{f}", f, _once(f"{kind}_{f}", code, token)).source()
               for f, code in BEHAVIOURS[kind].items()}
    return notebooks.solved(**sources)


def looker_notebook(token):
    body = f"exec({_program(LOOK, token)!r}, {{'__name__': 'neighbour'}})"
    return notebooks.solved(identity_block=Hostile("looker", "identity_block", body, zero=False).source())


def build_class(folder, token, hostile, correct, owner=None):
    """The class in `folder`: the misbehaving submissions and `correct` correct ones (the first half
    lookers), in an order (their names' order, the order a batch hands them out) where each correct one
    comes after a misbehaving one: first two misbehaving ones (one for each of two workers: the first
    two, the planter and the filler, leave files for the lookers), then two correct ones, then one of
    each in turn. {name: kind}, kind 'looker' or 'correct' for the correct ones."""
    folder.mkdir(parents=True, exist_ok=True)
    rights = ["looker"] * ((correct + 1) // 2) + ["correct"] * (correct // 2)
    wrongs = list(hostile)
    order = wrongs[:2] + rights[:2]
    wrongs, rights = wrongs[2:], rights[2:]
    while wrongs or rights:
        order += wrongs[:1] + rights[:1]
        wrongs, rights = wrongs[1:], rights[1:]
    kinds = {}
    for i, kind in enumerate(order):
        name = f"{i:02d}-{kind}"
        nb = looker_notebook(token) if kind == "looker" else notebooks.solved() if kind == "correct" \
            else hostile_notebook(kind, token)
        path = notebooks.write(nb, folder / f"{name}.ipynb")
        if owner:
            entry = pwd.getpwnam(owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        kinds[name] = kind
    return kinds


# ----------------------------------------------------------------------------- outside, on the machine


def meminfo(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


PID_MAX = int(Path("/proc/sys/kernel/pid_max").read_text())


def tasks():
    """Processes and threads on the machine (each holds a PID): /proc/loadavg's count of scheduling entities."""
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])


class Health:
    """Samples the machine's free PIDs and MemAvailable every `interval` seconds while a batch runs,
    and the memory the memory hog's processes (`nb-<token>-hog` on their command lines) hold together."""

    def __init__(self, token, interval=0.2):
        self.hog_mark, self.interval = f"nb-{token}-hog", interval
        self.mem_total = meminfo("MemTotal")
        self.min_free_pids, self.min_available, self.max_hog, self.samples = PID_MAX, self.mem_total, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _hog(self):
        total = 0
        for p in psutil.process_iter(["cmdline", "memory_info"]):
            try:
                if self.hog_mark in (p.info["cmdline"] or ()) and p.info["memory_info"] is not None:
                    total += p.info["memory_info"].rss
            except psutil.Error:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            try:
                self.min_free_pids = min(self.min_free_pids, PID_MAX - tasks())
                self.min_available = min(self.min_available, meminfo("MemAvailable"))
                self.max_hog = max(self.max_hog, self._hog())
                self.samples += 1
            except (OSError, ValueError):
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def describe(self):
        return (f"min free PIDs {self.min_free_pids} of pid_max {PID_MAX}; min MemAvailable "
                f"{self.min_available / 2**30:.1f} GiB of {self.mem_total / 2**30:.1f} GiB; the memory hog's "
                f"processes held {self.max_hog / 2**30:.1f} GiB at most ({self.samples} samples)")


def _session_folders():
    """The /tmp/rg<pid>-* folders of every test session on the machine (tests/conftest.py)."""
    return {str(p) for p in Path("/tmp").glob("rg[0-9]*-*")}


def strays(token, roots, users=("nobody",)):
    """What outlives a batch: processes naming one of `roots` (kernels and zygotes name their folders
    there) or the token, `sleep 4244`, and stopped processes of `users` (those that name another test
    session's folder are that session's)."""
    others = _session_folders() - {str(r) for r in roots}
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "name", "status", "username"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if p.pid == os.getpid():
                continue
            why = ""
            if any(str(r) in cmd for r in roots) or f"nb-{token}" in cmd:
                why = "left behind"
            elif cmd == "sleep 4244":
                why = "sleep 4244"
            elif p.info["status"] == psutil.STATUS_STOPPED and p.info["username"] in users \
                    and not any(o in cmd for o in others):
                why = "stopped"
            if why:
                found.append((p.pid, why, p.info["status"], p.info["name"], cmd[:160]))
        except psutil.Error:
            pass
    return found


def wait_for_no_strays(token, roots, users=("nobody",), wait=10.0):
    deadline = time.monotonic() + wait
    while True:
        left = strays(token, roots, users)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def kill_strays(found):
    """End the processes `strays` found (ours: they name our folders or token), by PID."""
    for pid, *_ in found:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


def planted_outside(token, roots):
    """Files with the token in their name, on the machine: in `roots` (searched through) and directly in
    the shared folders."""
    found = []
    for root in roots:
        found += [str(p) for p in Path(root).rglob(f"*{token}*")]
    for shared in ("/tmp", "/dev/shm", "/dev", "/var/tmp"):
        try:
            found += [str(p) for p in Path(shared).iterdir() if token in p.name]
        except OSError:
            pass
    return found


def new_token():
    return os.urandom(5).hex()


def short_folder(prefix):
    """A folder directly in /tmp, open to other users (kernels' IPC socket paths must be short)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)
    return folder
