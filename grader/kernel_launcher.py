"""The command jupyter_client runs for a kernel that a zygote forks (grader.zygote).

It asks the zygote for the kernel and lives exactly as long as it, so the kernel manager's poll,
wait and kill work on it as on any kernel's process: killing it kills the kernel. Where the
zygote cannot make the kernel (gone, or refusing), it starts the kernel the usual way instead:
the command after "--". Runs in the grader's process tree, outside any sandbox, with the standard
library only (python -I -S).

Before the zygote's keeper starts anything of the kernel, the launcher learns the keeper's PID from
Linux (SCM_CREDENTIALS, in the host's numbering), checks it is the zygote's child, writes it where
the grader finds it (PID_FILE) and moves it into the kernel's cgroup (CGROUP_PROCS, a JSON list of
cgroup.procs files; empty where there is none): all the kernel will ever start is in there.

Usage: kernel_launcher.py CONTROL_SOCKET ZYGOTE_PID FOLDER NAME STARTUP_SECONDS PID_FILE CGROUP_PROCS
           IPYKERNEL_ARGS... -- FALLBACK...
"""

import json
import os
import signal
import socket
import struct
import sys
import time


def _line(sock):
    data = b""
    while not data.endswith(b"\n"):
        more = sock.recv(1)
        if not more:
            break
        data += more
    return data.decode(errors="replace").strip()


def _alive(pid):
    """Whether process `pid` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def _descends_from(pid, ancestor):
    try:
        while pid > 1:
            if pid == ancestor:
                return True
            pid = _parent(pid)
    except (OSError, ValueError, IndexError):
        pass
    return False


def _keeper(sock, zygote_pid):
    """The keeper's PID, as Linux gives it with its b"P\\n" (the sender's own, translated to ours)."""
    size = socket.CMSG_SPACE(struct.calcsize("3i"))
    data, ancillary, _, _ = sock.recvmsg(2, size)
    if data.startswith(b"E"):  # the zygote could not fork a keeper: why, for the fallback's line
        raise OSError((data + _line(sock).encode())[2:].decode(errors="replace").strip())
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and data == b"P\n":
            pid = struct.unpack("3i", payload[:struct.calcsize("3i")])[0]
            if pid > 0 and _descends_from(pid, zygote_pid):
                return pid
    raise OSError(f"the zygote answered {data!r} without its keeper's credentials")


def admit(pid, pid_file, cgroup_procs):
    """Put the keeper where the grader finds and caps it: its PID in `pid_file`, it in each cgroup."""
    for procs in cgroup_procs:
        with open(procs, "w") as f:
            f.write(str(pid))
    partial = f"{pid_file}.part"
    with open(partial, "w") as f:
        f.write(str(pid))
    os.replace(partial, pid_file)


def ask(control, zygote_pid, folder, name, startup, argv, pid_file="", cgroup_procs=()):
    """A connection to the zygote with the kernel started on it, or (None, why not)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    try:
        sock.settimeout(startup)  # the zygote's first kernel waits for its imports
        deadline = time.monotonic() + startup
        while True:  # a zygote just started binds its socket within a moment: wait for it
            try:
                sock.connect(control)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline or not _alive(zygote_pid):
                    raise
                time.sleep(0.02)
        body = json.dumps({"folder": folder, "name": name, "argv": argv, "env": dict(os.environ)}).encode()
        socket.send_fds(sock, [struct.pack("!I", len(body)) + body], [1, 2])
        keeper = _keeper(sock, zygote_pid)
        if pid_file:
            admit(keeper, pid_file, cgroup_procs)
        sock.sendall(b"G\n")
        reply = _line(sock)
    except OSError as exc:
        sock.close()
        return None, f"{type(exc).__name__}: {exc}"
    if reply != "S":
        sock.close()
        return None, reply[2:] or "it closed the connection"
    sock.settimeout(None)
    return sock, ""


def _die_with_parent():
    """SIGKILL when the grader dies, and none of this if it is gone already: a kernel started on its
    own by an orphan would outlive everything (its bubblewrap dies with its parent, then init)."""
    import ctypes

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    return parent


def main(argv):
    parent = _die_with_parent()
    # jupyter_client interrupts a kernel before killing it; the zygote's kernels are not interrupted
    # (the grader never interrupts: a cell over its limit costs its kernel), and Ctrl-C is the grader's
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cut = argv.index("--")
    control, zygote_pid, folder, name, startup, pid_file, cgroup_procs = argv[1:8]
    sock, why = ask(control, int(zygote_pid), folder, name, float(startup), argv[8:cut], pid_file,
                    json.loads(cgroup_procs))
    if sock is None:
        fallback = argv[cut + 1:]
        print(f"grader: the zygote could not start this kernel ({why}); starting it on its own", file=sys.stderr,
              flush=True)
        if os.getppid() != parent:  # the grader is gone: so is this kernel
            return 1
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp(fallback[0], fallback)
    reply = _line(sock)  # "X <code>" when the kernel exits; nothing if the zygote went with it
    return int(reply[2:]) if reply.startswith("X ") and reply[2:].lstrip("-").isdigit() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
