"""The command jupyter_client runs for a kernel that a zygote forks (grader.zygote).

It asks the zygote for the kernel and lives exactly as long as it, so the kernel manager's poll,
wait and kill work on it as on any kernel's process: killing it kills the kernel. Where the
zygote cannot make the kernel (gone, or refusing), it starts the kernel the usual way instead:
the command after "--". Runs in the grader's process tree, outside any sandbox, with the standard
library only (python -I -S).

Usage: kernel_launcher.py CONTROL_SOCKET ZYGOTE_PID FOLDER NAME STARTUP_SECONDS IPYKERNEL_ARGS... -- FALLBACK...
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


def ask(control, zygote_pid, folder, name, startup, argv):
    """A connection to the zygote with the kernel started on it, or (None, why not)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
    control, zygote_pid, folder, name, startup = argv[1:6]
    sock, why = ask(control, int(zygote_pid), folder, name, float(startup), argv[6:cut])
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
