"""The zygote: the process of one grading worker that imports TensorFlow once and forks its kernels.

It runs inside bubblewrap like a kernel (grader.zygote starts it, handing it this file's text: the
grader itself is not visible in there), imports Keras and ipykernel before any student code exists,
then forks one kernel per request. A forked kernel is a fresh process that no submission's code has
touched, and before running anything it makes its own sandbox inside the zygote's: new user, mount,
PID, network, IPC and UTS namespaces; its own empty /tmp, /dev/shm and working folder; of the
zygote's folder only its own socket folder (not the zygote's socket, not the other kernels');
a fresh /proc that shows its own processes only; no capabilities left. So a kernel sees and keeps
exactly what a kernel started on its own under bubblewrap sees and keeps, minus the 2 to 4 s of
starting Python and importing TensorFlow. It also has its own session and process group (no signal
to "my group" reaches the zygote or another kernel), its own /dev/pts, and its own process cap:
RLIMIT_NPROC set in its own user namespace, where Linux counts its processes and threads alone.

The protocol, one Unix-socket connection per kernel (from grader/kernel_launcher.py):
  launcher -> zygote: a 4-byte length, then JSON {"folder", "name", "argv", "env"} (the kernel's
                      socket folder, its keeper's process name, ipykernel's arguments, its
                      environment), with the launcher's stdout and stderr passed as file
                      descriptors; the working folder and scratch size are the zygote's own;
  zygote -> launcher: b"P\\n" from the kernel's keeper, with its credentials (SCM_CREDENTIALS:
                      Linux hands the launcher the keeper's PID as the host sees it);
  launcher -> zygote: b"G\\n" once the grader can find the keeper (and has put it in the kernel's
                      cgroup, where there is one): only then is anything of the kernel started;
  zygote -> launcher: b"S\\n" once the kernel's sandbox is made (or b"E <why>\\n"), then
                      b"X <exit code>\\n" when it has exited.
The kernel lives as long as the connection: when the launcher dies, its keeper kills the kernel's
PID namespace, so everything the student's code started goes with it.

Standard library only (ctypes for unshare, mount and capset), besides what it imports to fork.
"""

import ctypes
import errno
import gc
import json
import os
import re
import resource
import select
import signal
import socket
import struct
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NAME, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 15, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
VEIL_SIZE = 1024 * 1024  # the tmpfs that hides the rest of the zygote's folder: empty folders only

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _bytes(text):
    return None if text is None else os.fsencode(text)


def _mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)), f"mount {target}")


def _tmpfs(path, size):
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0755")


def own_namespaces():
    """Enter new user, mount, PID, network, IPC and UTS namespaces, keeping this uid and gid."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the zygote


def _under(path, folder):
    return os.path.commonpath([path, folder]) == folder


def _unescape(field):
    """A mount point as /proc/self/mountinfo writes it (space, tab, newline, backslash as \\ooo)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(folder):
    """The outermost mount points strictly inside `folder`, in mount order."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point != folder and _under(point, folder) and point not in points:
                points.append(point)
    return [p for p in points if not any(q != p and _under(p, q) for q in points)]


def own_files(base, folder, cwd, size):
    """Fresh /tmp, /dev/shm and working folder; of `base` (the zygote's folder) only `folder` stays.

    Mounts go by file descriptor (/proc/self/fd/N), which still reaches a folder that a mount on
    top of it hides: the veil hides `folder`; a fresh /tmp hides what bubblewrap bound inside the
    old one (an interpreter or venv kept under /tmp, `base` itself), so each is put back in it.
    """
    own = os.open(folder, os.O_PATH | os.O_DIRECTORY)
    _tmpfs(base, VEIL_SIZE)  # hides the zygote's socket and every other kernel's folder
    os.mkdir(folder)
    _mount(f"/proc/self/fd/{own}", folder, None, MS_BIND)
    os.close(own)
    os.mkdir(cwd)
    # the veil read-only, as the empty root bubblewrap builds for a kernel on its own
    _mount(None, base, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _tmpfs(cwd, size)
    if os.path.isdir("/dev/pts"):  # its own pseudo-terminals, as bubblewrap's --dev gives each sandbox
        _mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    for shared in ("/tmp", "/dev/shm"):
        if not os.path.isdir(shared):
            continue
        kept = [(point, os.open(point, os.O_PATH)) for point in mounts_under(shared)]
        _tmpfs(shared, size)
        for point, fd in kept:  # the same mounts (read-only stays read-only), in the fresh folder
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(point, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(point), exist_ok=True)
                os.close(os.open(point, os.O_CREAT | os.O_WRONLY, 0o600))
            _mount(f"/proc/self/fd/{fd}", point, None, MS_BIND | MS_REC)
            os.close(fd)


def drop_privileges():
    """No capabilities, in any set, and none to regain: what bubblewrap leaves its command."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _close_fds_but(keep):
    keep = sorted(set(keep))
    start = 0
    for fd in keep:
        if fd > start:  # os.closerange(n, n) would close every descriptor from n up
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 65536)


def _exit_code(status):
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _receive(conn):
    """(request, [stdout fd, stderr fd]) from a launcher."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
    if len(data) < 4 or len(fds) != 2:
        raise ValueError("a request needs its length, its JSON and two file descriptors")
    size = struct.unpack("!I", data[:4])[0]
    while len(data) < 4 + size:
        more = conn.recv(4 + size - len(data))
        if not more:
            raise ValueError("the request ended early")
        data += more
    return json.loads(data[4:4 + size]), fds


def run_kernel(request, launcher, ready):
    """In the kernel's process (PID 2 of its namespace): become the ipykernel the request asks for.

    `ready`: a pipe's end, written once the sandbox is complete, so that a kernel that cannot have
    its sandbox is started on its own instead (the launcher's fallback) rather than lost."""
    _die_with_parent()
    drop_privileges()
    os.write(ready, b"ok")
    os.close(ready)
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["JPY_PARENT_PID"] = "1"  # as under bubblewrap: no parent poller (its parent is PID 1)
    os.chdir(request["cwd"])
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy

    numpy.random.seed()  # its own entropy, as a fresh process would have (random reseeds itself at fork)
    sys.argv = [launcher, *request["argv"]]
    from ipykernel import kernelapp

    code = 0
    try:
        kernelapp.launch_new_instance()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_init(request, launcher, ready):
    """PID 1 of the kernel's namespace: mounts its /proc, starts the kernel, reaps, and ends with it
    (which kills whatever else is left in the namespace). It leads the kernel's own session and
    process group, apart from its keeper's, so the kernel cannot stop the keeper either."""
    _die_with_parent()
    os.setsid()
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError as exc:
        os.write(ready, f"{exc}".encode())
        os._exit(1)
    kernel = os.fork()
    if kernel == 0:
        run_kernel(request, launcher, ready)
    os.close(ready)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == kernel:
            os._exit(_exit_code(status))


def _announce(conn):
    """Tell the launcher who this keeper is, and wait for its go (see the protocol above)."""
    creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
    conn.sendmsg([b"P\n"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
    conn.settimeout(60)
    answer = b""
    while len(answer) < 2 and (more := conn.recv(2 - len(answer))):
        answer += more
    if answer != b"G\n":
        raise ValueError("the launcher gave no go")
    conn.settimeout(None)


def own_process_cap(processes):
    """At most `processes` processes and threads for this user namespace's uid: the kernel's alone.
    Set after unshare: the new namespace keeps the zygote's limit for the count of all its kernels."""
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def keep_kernel(conn, request, fds, zygote_pid, launcher):
    """A forked child of the zygote: sandbox a kernel, then keep it as long as the connection lasts."""
    out, err = fds
    _die_with_parent()
    if os.getppid() != zygote_pid:
        os._exit(1)
    os.setsid()  # out of the zygote's session and process group: no signal to a group reaches it
    name = ctypes.create_string_buffer(_bytes(request["name"])[:15])  # how grader.zygote finds it
    _libc.prctl(PR_SET_NAME, ctypes.addressof(name), 0, 0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    null = os.open("/dev/null", os.O_RDONLY)  # the kernel's stdin; its stdout and stderr are the launcher's
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    _close_fds_but((conn.fileno(), 0, 1, 2))
    try:
        if os.path.dirname(request["folder"]) != request["base"]:
            raise ValueError(f"{request['folder']} is not a kernel folder of this zygote")
        _announce(conn)
        own_namespaces()
        if request.get("processes"):
            own_process_cap(int(request["processes"]))
        own_files(request["base"], request["folder"], request["cwd"], int(request["scratch"]))
        ready_read, ready = os.pipe()
        init = os.fork()
    except (OSError, ValueError, KeyError) as exc:
        try:
            conn.sendall(f"E {exc}\n".encode())
        except OSError:
            pass
        os._exit(1)
    if init == 0:
        conn.close()
        os.close(ready_read)
        run_init(request, launcher, ready)
    os.close(ready)
    for fd in (0, 1, 2):  # only the kernel holds them now: the log pipe ends when its namespace does
        os.close(fd)
    report = b""
    while chunk := os.read(ready_read, 512):
        report += chunk
    os.close(ready_read)
    if report != b"ok":  # no kernel in its own sandbox: none at all
        os.kill(init, signal.SIGKILL)
        os.waitpid(init, 0)
        conn.sendall(f"E {report.decode(errors='replace') or 'the kernel exited while making its sandbox'}\n".encode())
        os._exit(1)
    conn.sendall(b"S\n")
    pidfd = os.pidfd_open(init)
    while True:
        ready = select.select([conn, pidfd], [], [])[0]
        if pidfd in ready:
            break
        if not conn.recv(64):  # the launcher is gone: so is the kernel
            os.kill(init, signal.SIGKILL)
            break
    status = os.waitpid(init, 0)[1]
    try:
        conn.sendall(f"X {_exit_code(status)}\n".encode())
    except OSError:
        pass
    os._exit(0)


def serve(config):
    """Listen first (launchers wait in the backlog), import, then fork a kernel keeper per connection."""
    config = json.loads(config)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(config["control"])
    server.listen(64)
    gc.disable()  # as a kernel's warm-up does: the import is ~30% faster without the collector
    try:
        import keras  # noqa: F401
        from ipykernel import kernelapp  # noqa: F401
        import ipykernel_launcher
    finally:
        gc.enable()
        gc.freeze()
    launcher = ipykernel_launcher.__file__
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the system
    sys.stdout.flush()
    sys.stderr.flush()
    me = os.getpid()
    while True:
        conn = server.accept()[0]
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError) as exc:
            try:
                conn.sendall(f"E {exc}\n".encode())
            except OSError:
                pass
            conn.close()
            continue
        request.update(base=config["base"], cwd=config["cwd"], scratch=config["scratch"],
                       processes=config.get("processes", 0))
        try:
            keeper = os.fork()
        except OSError as exc:  # no process to be had now: this kernel starts on its own, the zygote stays
            keeper = -1
            try:
                conn.sendall(f"E fork: {exc}\n".encode())
            except OSError:
                pass
        if keeper == 0:
            try:
                server.close()
                keep_kernel(conn, request, fds, me, launcher)
            except BaseException:  # to the kernel's stderr, which reaches the grader's
                import traceback

                traceback.print_exc()
            finally:
                os._exit(1)
        conn.close()
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    serve(sys.argv[-1])
