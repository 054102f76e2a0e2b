"""A worker's zygote: TensorFlow imported once per worker, not once per submission.

Under bubblewrap, each worker's kernels (grader.pool) come from one Zygote: a process started in
the kernels' own sandbox, under their limits, which imports Keras and ipykernel before any student
code exists (grader/zygote_server.py) and forks each kernel. Every fork makes its own sandbox
inside the zygote's before running anything: its own namespaces, scratch, /proc and socket folder,
and no capabilities, so no submission sees another's files, processes or sockets, nor the zygote.
jupyter_client runs grader/kernel_launcher.py as each kernel's command; the launcher starts the
kernel the usual way wherever the zygote cannot.

Other isolation levels, and GRADER_ZYGOTE=0, start every kernel on its own, as before.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from grader import leftovers, native_logs, sandbox

SERVER = Path(__file__).with_name("zygote_server.py")
LAUNCHER = Path(__file__).with_name("kernel_launcher.py")
MARK = "resnet-grader-zygote"  # on the zygote's command line, which its forks share: how to find them
# The grader is hidden in the sandbox, so the zygote's program comes on its stdin.
BOOTSTRAP = "import sys; exec(compile(sys.stdin.read(), '<grader zygote>', 'exec'))"
MAX_KERNEL_FOLDERS = 0x10000  # named k0 to kffff: as short as the sockets folder of a kernel on its own


def enabled(limits, warm_up=True):
    """Whether kernels under `limits` come from a zygote: bubblewrap kernels that import TensorFlow ahead,
    where bubblewrap runs unprivileged (an ordinary user, or root with --run-as / nobody). Run by root
    itself, bubblewrap covers /proc/irq and /proc/bus in the sandbox, and Linux then refuses a fork
    the fresh /proc of its own PID namespace: such kernels start on their own."""
    unprivileged = bool(limits.run_as) or os.geteuid() != 0
    return (warm_up and unprivileged and limits.isolation == "bubblewrap"
            and os.environ.get("GRADER_ZYGOTE", "1") != "0")


def kill_all():
    """Kill every zygote of this process, and its kernels, without waiting; remove their folders."""
    for zygote in list(Zygote.live):
        sandbox.kill_tree(zygote.proc.pid, wait=0)
        shutil.rmtree(zygote.tmp, ignore_errors=True)
        Zygote.live.discard(zygote)


class Zygote:
    """One zygote, started at once; `close` kills it and every kernel it forked.

    Start it from a thread that lives as long as it does (bubblewrap's --die-with-parent).
    `source`: the server's program text (tests hand it a broken one).
    """

    live = set()

    def __init__(self, limits, source=None):
        if limits.isolation != "bubblewrap":
            raise ValueError("a zygote forks bubblewrap kernels only")
        self.limits = limits
        self.tmp = leftovers.new_folder(for_other_user=bool(limits.run_as))
        Zygote.live.add(self)
        self.workdir = self.tmp / "work"  # every kernel's working folder: a private tmpfs in each
        control = self.tmp / "z"  # the zygote's own socket folder, veiled from its kernels
        for folder in (self.workdir, control):
            folder.mkdir()
        if limits.run_as:
            self.tmp.chmod(0o711)
            for folder in (self.workdir, control):
                shutil.chown(folder, limits.run_as, sandbox.group_of(limits.run_as))
        self.control = control / "socket"
        self._count = 0
        config = {"control": str(self.control), "base": str(self.tmp), "cwd": str(self.workdir),
                  "scratch": limits.scratch, "processes": sandbox.process_cap(limits)}
        view = sandbox.make_view(limits, self.workdir, self.tmp)
        argv = sandbox.kernel_argv(limits, view, program=("-c", BOOTSTRAP, MARK, json.dumps(config)), nproc=False)
        read_end, write_end = os.pipe()
        self.logs = native_logs.Forwarder(read_end, sys.stderr)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=write_end, stderr=write_end,
                                         env=sandbox.kernel_env(self.workdir), cwd=str(self.workdir))
        except OSError:
            self.close()
            raise
        finally:
            os.close(write_end)
        try:
            self.proc.stdin.write((source if source is not None else SERVER.read_text()).encode())
            self.proc.stdin.close()
        except OSError:  # it died at once: its kernels start on their own (the launcher's fallback)
            pass

    def alive(self):
        """Whether it runs and can answer: a stopped zygote would leave every launcher waiting."""
        if self.proc.poll() is not None:
            return False
        try:
            chain = [psutil.Process(self.proc.pid)]
            while chain[-1].children() and MARK not in " ".join(chain[-1].cmdline()):
                chain.append(chain[-1].children()[0])  # setpriv/bwrap -> bwrap's init -> the server
            return all(p.status() not in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, psutil.STATUS_ZOMBIE,
                                          psutil.STATUS_DEAD) for p in chain)
        except psutil.Error:
            return False

    def new_kernel_folder(self):
        """A fresh socket folder for one kernel: the one folder of the zygote's the kernel sees."""
        for _ in range(MAX_KERNEL_FOLDERS):
            self._count += 1
            folder = self.tmp / f"k{self._count % MAX_KERNEL_FOLDERS:x}"
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                continue
            if self.limits.run_as:
                shutil.chown(folder, self.limits.run_as, sandbox.group_of(self.limits.run_as))
            return folder
        raise OSError(f"{self.tmp} holds {MAX_KERNEL_FOLDERS} kernel folders already")

    def kernel_argv(self, folder, fallback, pid_file, cgroup_procs=()):
        """The kernel's command: the launcher, asking this zygote, else running `fallback`. The launcher
        writes the kernel's keeper's PID into `pid_file` and moves it into `cgroup_procs`."""
        return [sys.executable, "-I", "-S", str(LAUNCHER), str(self.control), str(self.proc.pid), str(folder),
                self.kernel_name(folder), str(self.limits.startup_timeout), str(pid_file), json.dumps(list(cgroup_procs)),
                "-f", "{connection_file}", "--", *fallback]

    @staticmethod
    def kernel_name(folder):
        """The process name of the keeper of the kernel in `folder` (at most 15 bytes)."""
        return f"rg-kernel-{Path(folder).name}"

    def close(self):
        proc = getattr(self, "proc", None)
        if proc is not None:
            sandbox.kill_tree(proc.pid)
            proc.wait()
        if hasattr(self, "logs"):
            self.logs.join()
        shutil.rmtree(self.tmp, ignore_errors=True)
        Zygote.live.discard(self)
