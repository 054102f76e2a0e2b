"""Limits and isolation for the kernel that runs a student's code.

Isolation levels, strongest first; `resolve` picks the first that works on this machine:

- "bubblewrap": the kernel runs under bwrap (the sandbox Flatpak is built on) in new user, PID,
  network, IPC and UTS namespaces, as an unprivileged uid, dying with the process that started
  it. Its filesystem is a read-only view holding only what it needs (the system's /usr and /etc,
  the interpreter and its packages): solution/, grader/, the expected outputs, submissions,
  results folders and home folders are simply not there. It writes only to a private tmpfs
  of `Limits.scratch` bytes (its working folder and /tmp), gone when it exits, and to its socket
  folder. When the grader runs as root, the kernel also drops to an unprivileged user (`nobody`)
  before entering the sandbox, so even the files it can see are read without privilege.
- "namespaces": `unshare` (root only): no network, its own PID namespace; files are not hidden.
- "none": no namespaces; the grader kills the kernel's process tree.

`--run-as USER` (hardened mode) runs the kernel as that user in every level. Every level keeps
`prlimit`'s memory cap, the grader's time and output caps, and a parent-death signal.
"""

import functools
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from grader import leftovers

GiB = 1024 ** 3
MiB = 1024 ** 2
LEVELS = ("bubblewrap", "namespaces", "none")
SANDBOX_UID = 65534  # the uid the kernel has inside bubblewrap's user namespace (nobody)


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
    scratch: int = 256 * MiB  # bubblewrap: each writable tmpfs of the kernel (working folder, /tmp, /dev/shm)
    processes: int = 0  # processes and threads of one kernel together; 0: default_processes()
    network: bool = False
    run_as: str = ""  # run the kernel as this unprivileged user (hardened mode; bubblewrap as root)
    isolation: str = "auto"  # one of LEVELS, or "auto": the strongest that works here (see resolve)
    hide: tuple = ()  # paths the kernel must not see even where they lie inside what it needs


@dataclass(frozen=True)
class View:
    """What one bubblewrap kernel sees: read-only binds, masked paths, its scratch and socket folders."""

    read_only: tuple  # host paths bound read-only at the same place
    masked: tuple  # paths inside those replaced by empty tmpfs (folders) or /dev/null (files)
    scratch: str  # the kernel's working folder: a private tmpfs mounted at this path
    sockets: str  # the folder of its connection file and IPC sockets, bound read-write


SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# Readable to root only on most systems; masked as well, in case the kernel's user is root outside.
SECRETS = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/ssh", "/etc/ssl/private",
           "/etc/sudoers", "/etc/sudoers.d")
REPO = Path(__file__).resolve().parent.parent


def interpreter_paths():
    """The folders this interpreter and its packages live in: all the kernel needs besides the system."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(os.path.realpath(sys.executable)).parent)}
    paths |= {os.path.realpath(p) for p in paths}  # a symlinked venv: the link and what it points to
    return tuple(sorted(p for p in paths if p and Path(p).exists()))


def default_hidden():
    """Never visible to a kernel: the solution and the grader with its expected outputs (here, and
    as installed packages in the interpreter's site-packages: `pip install .` puts them there), and
    the invoking user's home."""
    import site

    homes = {os.path.expanduser("~"), os.environ.get("HOME", "")}
    if os.environ.get("SUDO_USER"):
        homes.add(os.path.expanduser(f"~{os.environ['SUDO_USER']}"))
    packages = {str(Path(d) / name) for d in (str(REPO), *site.getsitepackages()) for name in ("solution", "grader")}
    return tuple(sorted(packages | set(filter(None, homes))))


def _is_under(path, folder):
    path, folder = Path(path), Path(folder)
    return path == folder or folder in path.parents


def make_view(limits, scratch, sockets):
    """The kernel's view: the system and the interpreter, minus every hidden path that falls inside them."""
    wanted = [p for p in dict.fromkeys((*SYSTEM, *interpreter_paths())) if os.path.lexists(p)]
    read_only = tuple(p for p in wanted if not any(q != p and not os.path.islink(q) and _is_under(p, q) for q in wanted))
    hidden = {os.path.realpath(p) for p in (*default_hidden(), *limits.hide, *SECRETS)}
    # A hidden folder that holds something the kernel needs (a home holding the venv) stays; only
    # the needed part is bound, so the rest of it is absent anyway. Nor is one masked that holds
    # the interpreter's own import path (submissions kept in site-packages itself).
    needed = {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)
              and any(_is_under(os.path.realpath(p), r) for r in read_only)}
    masked = [h for h in hidden if os.path.lexists(h) and any(_is_under(h, r) for r in read_only)
              and not any(_is_under(r, h) for r in read_only)
              and not any(_is_under(n, h) for n in needed)]
    # one inside another is hidden with it (and could not be mounted in a mask made read-only)
    masked = tuple(sorted(h for h in masked if not any(o != h and _is_under(h, o) for o in masked)))
    return View(read_only, masked, str(scratch), str(sockets))


def bwrap_argv(view, limits):
    """bubblewrap's command line for `view`: every hole in the sandbox is named here."""
    argv = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--uid", str(SANDBOX_UID),
            "--gid", str(SANDBOX_UID),
            # ipykernel's parent poller would take bwrap's PID 1 for init and exit; 1 turns the poller off,
            # and bwrap's parent-death signal does its job
            "--setenv", "JPY_PARENT_PID", "1"]
    if limits.network:
        argv.append("--share-net")
    size = ["--size", str(limits.scratch)] if _bwrap_has_size() else []
    # /tmp first: an interpreter or venv kept under /tmp (a clone there) is bound on top of it, not hidden by it
    argv += [*size, "--tmpfs", "/tmp"]
    for path in view.read_only:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            argv += ["--symlink", os.readlink(path), path]
        else:
            argv += ["--ro-bind", path, path]
    for path in view.masked:  # read-only: a mask holds nothing that one kernel could leave for the next
        argv += ["--tmpfs", path, "--remount-ro", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    # /dev read-only (its device nodes still work), with /dev/shm a sized tmpfs of its own
    argv += ["--dev", "/dev", *size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev", "--proc", "/proc"]
    # the socket folder first: a zygote's holds its scratch (grader.zygote), which the tmpfs then covers
    argv += ["--bind", view.sockets, view.sockets, *size, "--tmpfs", view.scratch]
    return argv + ["--remount-ro", "/", "--chdir", view.scratch, "--"]


@functools.lru_cache(maxsize=None)
def _bwrap_has_size():
    try:
        return "--size" in subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False


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


KERNEL_PROGRAM = ("-m", "ipykernel_launcher", "-f", "{connection_file}")


def default_processes():
    """Processes and threads one kernel may have: room for the threads TensorFlow, OpenBLAS and
    ipykernel start (each about one per core), far below what a machine has (pid_max 32,768 or more)."""
    return 256 + 4 * (os.cpu_count() or 1)


def process_cap(limits):
    return limits.processes or default_processes()


def nproc_counts_per_kernel(limits):
    """Whether RLIMIT_NPROC caps one bubblewrap kernel as a whole: since Linux 5.14 it counts a uid's
    processes in each user namespace (a kernel's own) against the limit of that namespace; Linux never
    applies it to root's own uid, which is what root running bubblewrap itself maps the sandbox to."""
    return limits.isolation == "bubblewrap" and (bool(limits.run_as) or os.geteuid() != 0)


def kernel_argv(limits, view=None, program=KERNEL_PROGRAM, nproc=True):
    """The command that runs `program` (the interpreter's arguments after -I) under the limits: by
    default one kernel ({connection_file} filled in by jupyter_client); a zygote (grader.zygote) otherwise
    (`nproc=False`: its forks set their own cap, in their own user namespace, grader.zygote_server).

    `limits.isolation` must be resolved (see `resolve`); "bubblewrap" needs the kernel's `view`.
    """
    user = ["setpriv", f"--reuid={limits.run_as}", f"--regid={group_of(limits.run_as)}", "--clear-groups"] \
        if limits.run_as else []
    if limits.isolation == "bubblewrap":  # unprivileged user first: bwrap makes its own user namespace
        argv = user + bwrap_argv(view, limits)
    else:
        # bwrap has --die-with-parent; here setpriv gives the same (the signal survives exec, and
        # unshare --kill-child passes it on to the namespace's first process). unshare needs root:
        # the unprivileged user comes after it, and asks for the signal again, since changing
        # user clears it.
        death = ["setpriv", "--pdeathsig", "KILL"]
        argv = list(death)
        if limits.isolation == "namespaces":
            argv += ["unshare", "-p", "-f", "-m", "--mount-proc", "--kill-child"] + ([] if limits.network else ["-n"])
        argv += user + (death if user else [])
    if shutil.which("prlimit"):
        argv += ["prlimit", f"--data={limits.memory}", "--core=0", f"--fsize={256 * 1024 * 1024}"]
        if nproc and nproc_counts_per_kernel(limits):  # under bubblewrap only: elsewhere it would count the user's
            argv.append(f"--nproc={process_cap(limits)}")
    return argv + [sys.executable, "-I", *program]


def in_cgroup(argv, procs_files):
    """`argv`, run after its first process has moved itself into a cgroup (each of `procs_files`), so
    that everything it starts is in there too; `argv` itself where there is no cgroup."""
    if not procs_files:
        return list(argv)
    moves = "".join(f'echo $$ > "${i + 1}" && ' for i in range(len(procs_files)))
    return ["/bin/sh", "-c", f'{moves}shift {len(procs_files)} && exec "$@"', "in-cgroup", *procs_files, *argv]


PASS_THROUGH_ENV = ("KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH")


def kernel_env(workdir):
    """A scrubbed environment: nothing of the grader's own paths or secrets."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "agg",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_HOME": str(Path(workdir) / ".keras"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.update({k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ})
    return env


def can_start(limits):
    """Whether a kernel's own command line under `limits` starts this interpreter and finds ipykernel.

    Raises leftovers.NoRoom where no kernel can have a folder at all, whatever the isolation.
    """
    try:
        tmp = leftovers.new_folder(for_other_user=bool(limits.run_as))
    except leftovers.NoRoom:
        if limits.run_as:  # no folder its user can reach: a way without another user may still do
            return False
        raise
    try:
        scratch, sockets = tmp / "work", tmp / "sockets"
        scratch.mkdir()
        sockets.mkdir()
        if limits.run_as:
            tmp.chmod(0o711)
            shutil.chown(sockets, limits.run_as, group_of(limits.run_as))
        argv = kernel_argv(limits, make_view(limits, scratch, sockets))
        argv = argv[: argv.index("-I") + 1] + ["-c", "import importlib.util as u; assert u.find_spec('ipykernel')"]
        done = subprocess.run(argv, capture_output=True, cwd="/", timeout=60)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError, KeyError):
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def candidates(limits):
    """The ways to run a kernel that `limits` allows, strongest first, as resolved Limits."""
    levels = LEVELS if limits.isolation == "auto" else (limits.isolation,)
    root = os.geteuid() == 0
    found = []
    for level in levels:
        if level == "bubblewrap":
            if not shutil.which("bwrap"):
                continue
            users = [limits.run_as] if limits.run_as else (["nobody", ""] if root else [""])
            found += [replace(limits, isolation=level, run_as=u) for u in users if not u or _user_exists(u)]
        elif level == "namespaces":
            if namespaces_available():
                found.append(replace(limits, isolation=level))
        else:
            found.append(replace(limits, isolation=level))
    return found


@functools.lru_cache(maxsize=None)
def resolve(limits):
    """`limits` with `isolation` and `run_as` fixed to the strongest way that works here, or None.

    Raises leftovers.NoRoom where no kernel can have a folder for its sockets (see leftovers).
    """
    if limits.isolation not in ("auto", *LEVELS):
        raise ValueError(f"isolation must be 'auto' or one of {LEVELS}, got {limits.isolation!r}")
    leftovers.check_room()  # raises NoRoom, with the reason, where no kernel can have a folder
    for option in candidates(limits):
        if (option.isolation == "none" and not option.run_as) or can_start(option):
            return option
    return None


def describe(limits):
    """(one line on the isolation in force, a warning for the instructor or '') for resolved limits."""
    user = f", as user {limits.run_as}" if limits.run_as else ""
    if limits.isolation == "bubblewrap":
        return (f"bubblewrap: read-only system view without the solution, expected outputs, submissions, results "
                f"or home folders; no network; own PID namespace; unprivileged uid{user}"), ""
    if limits.isolation == "namespaces":
        return (f"namespaces (unshare): no network; own PID namespace; files not hidden{user}",
                "" if limits.run_as else "warning: bubblewrap is not usable here, so the kernel can read and write "
                "your files (the solution, results folders, your home); run `make bwrap` or use --run-as")
    return (f"none: no namespaces{user}",
            "warning: no isolation: student code runs with "
            + (f"user {limits.run_as}'s rights and whatever network this machine has" if limits.run_as else
               "your rights: it can read and write your files and use the network")
            + "; install bubblewrap (`make bwrap`) and allow unprivileged user namespaces")


def caps(limits):
    """The caps on one kernel as a whole (all its processes, threads and tmpfs), and how each holds."""
    from grader import cgroups, watchdog

    found = cgroups.find()
    count = process_cap(limits)
    sampled = (f"sampled by the grader every {watchdog.INTERVAL:g} s: the memory of all its processes (PSS: pages "
               "shared with the process it was forked from count in part)"
               + (" and its tmpfs" if limits.isolation == "bubblewrap" else "") + "; over it, its largest process is killed; "
               f"each process also under RLIMIT_DATA ({cgroups.why_not()})")
    if found is not None:
        processes = {"limit": count, "how": f"{found.describe()}: pids.max, its processes and threads together"}
        memory = {"limit": limits.memory, "how": f"{found.describe()}: all its processes and tmpfs together"}
    elif nproc_counts_per_kernel(limits) and shutil.which("prlimit"):
        processes = {"limit": count, "how": "RLIMIT_NPROC, counted by Linux in the kernel's own user namespace "
                                            "(its processes and threads together)"}
        memory = {"limit": limits.memory, "how": sampled}
    else:
        processes = {"limit": None, "how": f"none: {cgroups.why_not()}" + (
            ", and Linux applies no RLIMIT_NPROC to root" if limits.isolation == "bubblewrap" else "")}
        memory = {"limit": limits.memory, "how": sampled}
    if limits.isolation == "bubblewrap":
        tmpfs = {"limit": limits.scratch, "how": "its only writable folders: its working folder, /tmp and /dev/shm, "
                                                 "each a fresh tmpfs of this size, counted in its memory"}
    else:
        tmpfs = {"limit": None, "how": f"no private tmpfs at isolation level {limits.isolation}"}
    return {"processes": processes, "memory": memory, "tmpfs": tmpfs}


def isolation_info(limits):
    """The isolation in force, as results.json's top-level extra_data reports it."""
    summary, warning = describe(limits)
    return {"level": limits.isolation, "summary": summary, "caps": caps(limits),
            **({"warning": warning} if warning else {})}


def _user_exists(user):
    import pwd

    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


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


def kill_tree(pid, wait=5.0):
    """Kill a process and every descendant it left behind, waiting up to `wait` seconds for them to
    go; return how many were killed. A zombie counts as gone: it holds nothing, and the one who
    reaps it (another process's, often the system's init) may take its time."""
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
    deadline = time.monotonic() + wait
    left = procs
    while wait and left and time.monotonic() < deadline:
        psutil.wait_procs(left, timeout=0.01)  # reaps those that are our children
        left = [p for p in left if _running(p)]
    return len(procs)


def _running(proc):
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
