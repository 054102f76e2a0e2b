"""One cgroup per kernel: Linux caps all its processes and threads together (pids) and the memory of
all its processes, tmpfs pages they write included (memory), shares the CPU fairly between kernels
however many processes each runs (cpu, where it can be had), and measures what it used.

Layout: under this process's own cgroup in each hierarchy, one parent folder per grader process,
`resnet-grader-<pid>-<start time>`, holding one leaf `k<n>` per kernel. The start time tells a dead
grader's parent from a live one whose PID was reused; empty parents of dead graders are removed.
cgroup v2 is used where this process's own cgroup is writable and has memory and pids delegated;
else cgroup v1 where both hierarchies are mounted and writable (as root). Standard library only.
"""

import atexit
import errno
import functools
import itertools
import os
import re
import signal
import time

PREFIX = "resnet-grader-"
STALE = re.compile(rf"{PREFIX}(\d+)-(\d+)$")  # our parent folders
MOVED = re.compile(r"grader-(\d+)$")  # v2: where a grader moved itself to enable controllers below it
_counter = itertools.count(1)
_why = ""


class Unusable(Exception):
    """Why a hierarchy cannot hold our groups, in words for why_not()."""


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    """Like `echo text > path`: cgroup files take one write each."""
    with open(path, "w") as f:
        f.write(text)


def _rmdir(path, wait=0.0):
    """rmdir, retried for `wait` seconds: v1 says EBUSY a moment after the last process left."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def _start_time(pid):
    """Field 22 of /proc/PID/stat (clock ticks after boot), None where no such process."""
    try:
        return _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _parent_name():
    return f"{PREFIX}{os.getpid()}-{_start_time('self')}"


def _mkdir_own(folder):
    """mkdir; one that exists is this process's own (its name holds our PID and start time)."""
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass


class Group:
    """One kernel's cgroup: a leaf in each hierarchy (one on v2; one or two on v1)."""

    def __init__(self, version, pids_leaf, memory_leaf, cpu_leaf=None):
        self.version = version
        self.pids_leaf, self.memory_leaf = pids_leaf, memory_leaf
        self.leaves = tuple(dict.fromkeys(p for p in (pids_leaf, memory_leaf, cpu_leaf) if p))
        self.procs_files = tuple(os.path.join(leaf, "cgroup.procs") for leaf in self.leaves)

    def __repr__(self):
        return f"Group({', '.join(self.leaves)})"

    def add(self, pid):
        for procs in self.procs_files:
            _write(procs, str(pid))

    def pids(self):
        found = set()
        for procs in self.procs_files:
            try:
                found.update(int(pid) for pid in _read(procs).split())
            except FileNotFoundError:
                pass
        return sorted(found)

    def kill(self, timeout=5.0):
        """SIGKILL all in it until it is empty; True when it is. v1 has no atomic kill: processes forked
        between a read and the kills are caught by the next round, and pids.max bounds how many there are."""
        deadline = time.monotonic() + timeout
        if self.version == 2 and os.path.exists(os.path.join(self.pids_leaf, "cgroup.kill")):
            try:
                _write(os.path.join(self.pids_leaf, "cgroup.kill"), "1")
            except OSError:
                pass
        while True:
            pids = self.pids()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:  # gone already
                    pass
            time.sleep(0.005)

    def usage(self):
        """What Linux measured, as plain ints; keys Linux does not give here are left out."""
        v2 = self.version == 2
        files = {"memory_peak": (self.memory_leaf, "memory.peak" if v2 else "memory.max_usage_in_bytes"),
                 "processes_now": (self.pids_leaf, "pids.current"),
                 "processes_peak": (self.pids_leaf, "pids.peak")}
        events = {"oom_kills": (self.memory_leaf, "memory.events" if v2 else "memory.oom_control", "oom_kill"),
                  "process_limit_hits": (self.pids_leaf, "pids.events", "max")}
        out = {}
        for key, (leaf, name) in files.items():
            try:
                out[key] = int(_read(os.path.join(leaf, name)).split()[0])
            except (OSError, ValueError, IndexError):
                pass
        for key, (leaf, name, field) in events.items():
            try:
                lines = _read(os.path.join(leaf, name)).splitlines()
                out[key] = int(dict(line.split(None, 1) for line in lines if " " in line)[field])
            except (OSError, ValueError, KeyError):
                pass
        return out

    def remove(self):
        """kill(), then remove its folders; never raises (what cannot go is left for a later cleanup)."""
        try:
            self.kill()
        except OSError:
            pass
        for leaf in self.leaves:
            _rmdir(leaf, wait=2.0)


class Hierarchy:
    """Where this grader process makes its groups: its parent folder in each hierarchy."""

    def __init__(self, version, pids_dir, memory_dir, note, cpu_dir=None):
        self.version = version
        self.pids_dir, self.memory_dir, self.cpu_dir = pids_dir, memory_dir, cpu_dir
        self.parents = tuple(dict.fromkeys(p for p in (pids_dir, memory_dir, cpu_dir) if p))
        self.note = note
        self.owner = os.getpid()

    def describe(self):
        return f"cgroup v{self.version} ({self.note})"

    def new_group(self, processes, memory):
        """A fresh leaf capped at `processes` processes+threads and `memory` bytes; OSError if not."""
        name = f"k{next(_counter)}"
        group = Group(self.version, os.path.join(self.pids_dir, name), os.path.join(self.memory_dir, name),
                      os.path.join(self.cpu_dir, name) if self.cpu_dir else None)
        made = []
        try:
            for leaf in group.leaves:
                os.mkdir(leaf)
                made.append(leaf)
            _write(os.path.join(group.pids_leaf, "pids.max"), str(processes))
            mem = group.memory_leaf
            if self.version == 2:
                _write(os.path.join(mem, "memory.max"), str(memory))
                if os.path.exists(os.path.join(mem, "memory.swap.max")):  # swap would let it hold more
                    _write(os.path.join(mem, "memory.swap.max"), "0")
            else:
                _write(os.path.join(mem, "memory.limit_in_bytes"), str(memory))
                if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):  # memory + swap
                    _write(os.path.join(mem, "memory.memsw.limit_in_bytes"), str(memory))
        except OSError:
            for leaf in made:
                _rmdir(leaf, wait=1.0)
            raise
        return group

    def close(self):
        """At exit: remove our parent folders where they are empty (and their empty leaves)."""
        if os.getpid() == self.owner:  # not in a forked child that exits normally
            for parent in self.parents:
                _remove_if_empty(parent)


def _remove_if_empty(parent):
    try:
        for name in os.listdir(parent):
            if os.path.isdir(os.path.join(parent, name)):
                _rmdir(os.path.join(parent, name))
    except OSError:
        pass
    _rmdir(parent)


def clean_stale(base):
    """Remove what dead graders left under `base` (our own cgroup), where it is empty."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        stale, moved = STALE.match(name), MOVED.match(name)
        if stale and _start_time(stale[1]) != stale[2]:
            _remove_if_empty(os.path.join(base, name))
        elif moved and _start_time(moved[1]) is None:
            _rmdir(os.path.join(base, name))


def _enable(folder):
    """memory and pids for the folders below `folder`, and cpu (fair shares) where it is delegated too:
    True when cpu is on."""
    try:
        _write(os.path.join(folder, "cgroup.subtree_control"), "+memory +pids +cpu")
        return True
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise
    _write(os.path.join(folder, "cgroup.subtree_control"), "+memory +pids")
    return False


def v2(own):
    """Our parent folder under `own` (this process's cgroup v2 folder), with memory and pids enabled for
    the leaves it will hold. Linux enables controllers below a cgroup only while no process is in it
    (EBUSY otherwise), so this process first moves itself into a leaf `own/grader-<pid>` of its own."""
    try:
        controllers = _read(os.path.join(own, "cgroup.controllers")).split()
    except OSError as exc:
        raise Unusable(f"cgroup v2: cannot read {own}/cgroup.controllers ({exc.strerror})")
    if not {"memory", "pids"} <= set(controllers):
        raise Unusable(f"cgroup v2: {own} has no memory and pids controllers"
                       + (" (an ordinary user without a delegated cgroup v2 subtree)" if os.geteuid() else ""))
    if not os.access(own, os.W_OK) or not os.access(os.path.join(own, "cgroup.procs"), os.W_OK):
        raise Unusable(f"cgroup v2: {own} is not writable by uid {os.geteuid()} "
                       "(an ordinary user without a delegated cgroup v2 subtree)")
    base = own
    if MOVED.match(os.path.basename(own)):  # a process started by a grader that moved itself: use its base
        base = os.path.dirname(own)
    parent = os.path.join(base, _parent_name())
    try:
        _mkdir_own(parent)
    except OSError as exc:
        raise Unusable(f"cgroup v2: cannot make a folder in {base} ({exc.strerror})")
    try:
        try:
            cpu = _enable(base)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            moved = os.path.join(base, f"grader-{os.getpid()}")
            os.makedirs(moved, exist_ok=True)
            _write(os.path.join(moved, "cgroup.procs"), str(os.getpid()))
            try:
                cpu = _enable(base)
            except OSError:
                _write(os.path.join(own, "cgroup.procs"), str(os.getpid()))  # back where it was
                _rmdir(moved)
                raise Unusable(f"cgroup v2: Linux refuses to enable memory and pids below {base}: other processes "
                               "share this process's cgroup (start the grader in a cgroup of its own)")
        cpu = _enable(parent) and cpu
    except Unusable:
        _rmdir(parent)
        raise
    except OSError as exc:
        _rmdir(parent)
        raise Unusable(f"cgroup v2: cannot enable memory and pids below {base} ({exc.strerror})")
    who = "subtree" if os.geteuid() == 0 else "delegated subtree"
    return Hierarchy(2, parent, parent, f"{who} {base}" + (", cpu shared" if cpu else ""), parent if cpu else None), [base]


def _cpu_parent(cpu_own, name):
    """Our parent folder in the cpu hierarchy, or None: its leaves share the CPU equally (the default
    shares), so a kernel running hundreds of processes gets no more of it than one running two."""
    if not cpu_own:
        return None
    folder = os.path.join(cpu_own, name)
    try:
        _mkdir_own(folder)
    except OSError:
        return None
    if os.path.exists(os.path.join(folder, "cpu.shares")):
        return folder
    _rmdir(folder)
    return None


def v1(pids_own, memory_own, cpu_own=None):
    """Our parent folder in the pids and the memory hierarchy (one if they are mounted together), and in
    the cpu one where it can be made."""
    name, made = _parent_name(), []
    try:
        for own in dict.fromkeys((pids_own, memory_own)):
            _mkdir_own(os.path.join(own, name))
            made.append(os.path.join(own, name))
        for folder, needed in ((pids_own, "pids.max"), (memory_own, "memory.limit_in_bytes")):
            if not os.path.exists(os.path.join(folder, name, needed)):
                raise FileNotFoundError(errno.ENOENT, f"no {needed}", os.path.join(folder, name))
    except OSError as exc:
        for folder in made:
            _rmdir(folder)
        # the folder it is made in, not its name (which holds our PID): results.json quotes this line
        where = os.path.dirname(exc.filename) if exc.filename else pids_own
        raise Unusable(f"cgroup v1: cannot make a folder in {where} ({exc.strerror})")
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    cpu = _cpu_parent(cpu_own, name) if cpu_own not in (pids_own, memory_own) else None
    hierarchy = Hierarchy(1, os.path.join(pids_own, name), os.path.join(memory_own, name),
                          f"pids, memory{', cpu' if cpu else ''} hierarchies written by {who}", cpu)
    return hierarchy, list(dict.fromkeys(p for p in (pids_own, memory_own, cpu_own if cpu else None) if p))


def _unescape(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), path)


def discover(self_cgroup=None, mountinfo=None):
    """(Hierarchy, folders where it lives) or (None, why), from the text of /proc/self/cgroup and
    /proc/self/mountinfo (read here when not given)."""
    try:
        self_cgroup = _read("/proc/self/cgroup") if self_cgroup is None else self_cgroup
        mountinfo = _read("/proc/self/mountinfo") if mountinfo is None else mountinfo
    except OSError as exc:
        return None, f"no cgroups here ({exc.strerror})"
    paths = {}  # controller ("" for v2) -> this process's cgroup path
    for line in self_cgroup.splitlines():
        _number, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    mounts = {}  # controller ("" for v2) -> (mount point, root of the mount)
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, (fstype, _source, options) = left.split(), right.split()[:3]
        if fstype == "cgroup2":
            mounts.setdefault("", (_unescape(fields[4]), _unescape(fields[3])))
        elif fstype == "cgroup":
            for controller in options.split(","):
                mounts.setdefault(controller, (_unescape(fields[4]), _unescape(fields[3])))

    def own(controller):
        point, root = mounts[controller]
        path = paths[controller]
        if root != "/" and (path + "/").startswith(root + "/"):
            path = path[len(root):]
        return os.path.join(point, path.lstrip("/")).rstrip("/")

    reasons = []
    if "" in mounts and "" in paths:
        try:
            return v2(own(""))
        except Unusable as exc:
            reasons.append(str(exc))
    if all(c in mounts and c in paths for c in ("pids", "memory")):
        try:
            return v1(own("pids"), own("memory"), own("cpu") if "cpu" in mounts and "cpu" in paths else None)
        except Unusable as exc:
            reasons.append(str(exc))
    else:
        reasons.append("cgroup v1: no pids and memory hierarchies mounted")
    return None, "no writable pids and memory cgroup: " + "; ".join(reasons)


@functools.lru_cache(maxsize=None)
def find():
    """This grader process's Hierarchy, made once; None where there is no usable one (see why_not())."""
    global _why
    if os.environ.get("GRADER_CGROUPS", "").strip() == "0":
        _why = "cgroups turned off (GRADER_CGROUPS=0)"
        return None
    try:
        found, extra = discover()
    except (OSError, ValueError) as exc:  # unexpected /proc text: no cgroups rather than a crash
        found, extra = None, f"cannot read this process's cgroups ({exc})"
    if found is None:
        _why = extra
        return None
    _why = ""
    for base in extra:
        clean_stale(base)
    atexit.register(found.close)
    return found


def why_not():
    """One line: why find() returned None; "" where it found a hierarchy."""
    find()
    return _why
