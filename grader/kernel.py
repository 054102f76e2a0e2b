"""Run a grading notebook in fresh, isolated kernels of the grader's own choosing.

A kernel is this interpreter's ipykernel, started from a kernelspec the grader
writes itself (never the notebook's), under grader.sandbox's limits, in an
empty temporary directory with a scrubbed environment, so neither `solution`
nor the expected outputs can be imported from it. Each kernel serves one
submission only. If a measuring cell kills or hangs its kernel, that function
alone fails: the functions left are measured in a new kernel.
"""

import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

import psutil

from grader import cgroups, leftovers, native_logs, sandbox, watchdog, zygote
from grader.probe import WIRE_MIMETYPE
from grader.sandbox import Limits

KERNEL_NAME = "resnet-grader"
# Imported while the kernel starts, before any student code, so a warm kernel is ready at once; the
# garbage collector is off meanwhile (it would traverse the growing heap again and again: ~30% of the
# import's CPU time), then keeps out of the imported objects (gc.freeze). The grading notebook's setup
# cell turns it on again whatever happened here.
WARM_UP = ("import gc as _grader_gc; _grader_gc.disable(); import keras as _grader_warm_up; "
           "_grader_gc.enable(); _grader_gc.freeze(); del _grader_warm_up, _grader_gc")


@dataclass(frozen=True)
class CellRun:
    """What one measuring cell produced, or why it produced nothing."""

    function: str
    outputs: tuple
    failure: str = ""
    limit: str = ""  # with `failure`: the kind of limit hit ('timeout', 'crash'), for the class report


class _Manager(AsyncKernelManager):
    """Hands the connection file to the unprivileged user in hardened mode, so its kernel can read it."""

    run_as = ""

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if self.run_as:
            shutil.chown(self.connection_file, self.run_as)


def kill_all():
    """Kill every kernel this process started and still holds, and remove their folders, without
    talking to them: for a grader that is being stopped (Ctrl-C, SIGTERM, its parent gone)."""
    for kernel in list(Kernel.live):
        kernel.kill(wait=0)  # no waiting: SIGKILL cannot be refused
        kernel.remove_folders()
        Kernel.live.discard(kernel)
    zygote.kill_all()


_watch = {}
_watch_lock = threading.Lock()


def memory_watch():
    """This process's sampler of kernels' memory, for kernels that have no cgroup (grader.watchdog)."""
    with _watch_lock:
        if "it" not in _watch:
            _watch["it"] = watchdog.MemoryWatch()
    return _watch["it"]


class Kernel:
    """One kernel, started at once and used for one submission; `close` leaves nothing behind.

    Start kernels from a thread that lives as long as they do (the main one): the kernel's
    parent-death signal fires when the thread that started it ends.
    """

    live = set()  # started and not closed yet, for kill_all

    def __init__(self, limits=Limits(), warm_up=True, zygote=None):
        """`zygote`: a grader.zygote.Zygote of these limits to fork the kernel from (then no warm-up runs:
        it has imported TensorFlow already)."""
        if limits.isolation not in sandbox.LEVELS:  # decided once per process, by whoever starts kernels
            raise ValueError(f"resolve the kernels' isolation first (grader.sandbox.resolve), not {limits.isolation!r}")
        self.limits = limits
        self.zygote = zygote
        self.pid = None
        self.keeper = None  # a zygote's kernel: the keeper, whose descendants are the kernel (its PID namespace)
        self.usage = {}  # what the kernel used, as measured when it closed (grader.cgroups, grader.watchdog)
        self.group = new_group(limits)
        if zygote is None:
            self.tmp = leftovers.new_folder(for_other_user=bool(limits.run_as))  # short enough for its sockets
            self.workdir, sockets, self.specs = self.tmp / "work", self.tmp / "sockets", self.tmp / "kernels"
        else:  # its sockets in a folder of the zygote's, which the zygote's sandbox sees; nothing else there
            self.tmp = sockets = zygote.new_kernel_folder()
            self.workdir, self.specs = zygote.workdir, Path(f"{self.tmp}.spec")
        Kernel.live.add(self)
        if zygote is None:
            self.workdir.mkdir()
            sockets.mkdir()
            if limits.run_as:  # the kernel's user owns its working and socket folders, and nothing else here
                self.tmp.chmod(0o711)
                for folder in (self.workdir, sockets):
                    shutil.chown(folder, limits.run_as, sandbox.group_of(limits.run_as))
        spec = self.specs / KERNEL_NAME
        spec.mkdir(parents=True)
        view = sandbox.make_view(limits, self.workdir, sockets) if limits.isolation == "bubblewrap" else None
        argv = sandbox.kernel_argv(limits, view) + ([f"--IPKernelApp.exec_lines={WARM_UP}"] if warm_up else [])
        procs = self.group.procs_files if self.group else ()
        argv = sandbox.in_cgroup(argv, procs)
        if zygote is not None:
            self.pid_file = self.specs / "keeper.pid"
            argv = zygote.kernel_argv(sockets, fallback=argv, pid_file=self.pid_file, cgroup_procs=procs)
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "ResNet grader", "language": "python"}))
        ksm = KernelSpecManager(kernel_dirs=[str(self.specs)], ensure_native_kernel=False)
        # nbclient needs the asynchronous manager: a blocking client would stall its event loop.
        self.km = _Manager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm, transport="ipc",
                           ip=str(sockets / "ipc"), connection_file=str(sockets / "connection.json"))
        self.km.run_as = limits.run_as
        # The kernel's own stdout and stderr (not its cells' outputs) reach ours through a filter
        # that drops TensorFlow's C++ start-up log lines.
        read_end, write_end = os.pipe()
        self.logs = native_logs.Forwarder(read_end, sys.stderr)
        try:
            run_sync(self.km.start_kernel)(env=sandbox.kernel_env(self.workdir), cwd=str(self.workdir),
                                           stdout=write_end, stderr=write_end)
        finally:
            os.close(write_end)
        self.pid = self.km.provisioner.pid if self.km.provisioner else None
        self._started = time.time()
        if self.group is None and limits.isolation == "bubblewrap":
            memory_watch().watch(self, self.processes, limits.memory, self._over_memory, self._tmpfs)

    def _keeper(self):
        """The zygote's keeper of this kernel (psutil.Process), once its launcher has named it."""
        if self.keeper is None and self.zygote is not None:
            try:
                proc = psutil.Process(int(self.pid_file.read_text()))
                if proc.create_time() >= self._started - 1:  # not a PID used again since
                    self.keeper = proc
            except (OSError, ValueError, psutil.Error):
                pass
        return self.keeper

    def processes(self):
        """The roots of this kernel's processes: everything it started descends from them."""
        roots = [self._keeper()]
        try:
            roots.append(psutil.Process(self.pid) if self.pid else None)
        except psutil.Error:
            pass
        return [p for p in roots if p is not None]

    def _tmpfs(self):
        """Its tmpfs folders as seen from here, through a process of its mount namespace."""
        inner = self._keeper()
        if inner is None and self.pid:
            try:
                inner = next(iter(psutil.Process(self.pid).children(recursive=True)), None)
            except psutil.Error:
                return ()
        if inner is None:
            return ()
        root = f"/proc/{inner.pid}/root"
        return tuple(root + p for p in ("/tmp", "/dev/shm", str(self.workdir)))

    def _over_memory(self):
        """As the OOM killer does in a cgroup: kill the kernel's largest process (the kernel itself only where
        it is the largest), and go on watching the rest."""
        roots = self.processes()
        top = {p.pid for p in roots}
        kernel = watchdog._tree(roots, watchdog._children()) - top  # never the keeper or the launcher,
        if self.limits.isolation == "bubblewrap":  # nor the PID namespace's init under them (it takes all)
            kernel -= {c.pid for r in roots for c in _safe_children(r)}
        largest = max(kernel, key=watchdog._memory, default=None)
        print(f"grader: a kernel went over its memory cap of {self.limits.memory / sandbox.GiB:.1f} GiB (all its "
              "processes and tmpfs together): its largest process killed", file=sys.stderr, flush=True)
        if largest is None:
            self.kill(wait=0)
            return
        try:
            os.kill(largest, 9)
        except OSError:
            pass
        memory_watch().watch(self, self.processes, self.limits.memory, self._over_memory, self._tmpfs)

    def kill(self, wait=5.0):
        """Kill every process of this kernel: its cgroup, else its PID namespace through its roots.
        Stopped, renamed, double-forked or in a session of their own, they go. Returns those left."""
        procs = []
        for root in self.processes():
            try:
                procs += [root, *root.children(recursive=True)]
            except psutil.Error:
                pass
        if self.group is not None:
            self.group.kill(timeout=wait)
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        gone, left = psutil.wait_procs(procs, timeout=wait) if wait else ([], procs)
        return [p for p in left if sandbox._running(p)]

    def close(self):
        self._keeper()  # named before the launcher goes: its keeper may exit with it, its kernel not yet
        try:
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:
            pass
        left = self.kill()
        if left:
            print(f"grader: {len(left)} process(es) of a kernel did not end in 5 s after SIGKILL: "
                  + ", ".join(str(p.pid) for p in left), file=sys.stderr, flush=True)
        if self.group is not None:
            self.usage = self.group.usage()
            self.group.remove()
        elif "it" in _watch:
            self.usage = _watch["it"].unwatch(self)
        self.logs.join()
        self.remove_folders()
        Kernel.live.discard(self)

    def remove_folders(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.specs, ignore_errors=True)


def _safe_children(proc):
    try:
        return proc.children()
    except psutil.Error:
        return []


def new_group(limits):
    """A cgroup of its own for one kernel, capping all its processes and their memory, tmpfs included;
    None where Linux gives the grader none (then: grader.watchdog and RLIMIT_NPROC, grader.sandbox)."""
    found = cgroups.find() if limits.isolation in sandbox.LEVELS else None
    if found is None:
        return None
    try:
        return found.new_group(processes=sandbox.process_cap(limits), memory=limits.memory)
    except OSError as exc:
        print(f"grader: no cgroup for a kernel ({exc})", file=sys.stderr, flush=True)
        return None


class CappedClient(NotebookClient):
    """nbclient, keeping at most `limits.output` characters of text per cell and one bounded payload."""

    def __init__(self, nb, limits, **kw):
        super().__init__(nb, **kw)
        self.limits = limits
        self._spent = {}

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        kind = msg.get("msg_type")
        if kind == "display_data" and WIRE_MIMETYPE in content.get("data", {}):
            size = len(json.dumps(content["data"][WIRE_MIMETYPE]))
            if size > self.limits.payload:
                content["data"] = {"text/plain": f"[measurement of {size} bytes dropped: over the limit]"}
            return super().output(outs, msg, display_id, cell_index)
        text = content.get("text", "") if kind == "stream" else json.dumps(content)[:100_000]
        spent = self._spent.get(cell_index, 0)
        self._spent[cell_index] = spent + len(text)
        if spent >= self.limits.output:
            return None
        if len(text) + spent > self.limits.output and kind == "stream":
            content["text"] = text[: self.limits.output - spent] + "\n[output truncated]\n"
        if kind == "error":
            content["traceback"] = [line[:2000] for line in content.get("traceback", [])[-20:]]
        return super().output(outs, msg, display_id, cell_index)


def _role(cell):
    meta = cell.metadata.get("resnet_grader", {})
    return meta.get("role", ""), meta.get("function", "")


def run_notebook(nb, limits=Limits(), next_kernel=None):
    """Execute the grading notebook; return one CellRun per measuring cell, in order.

    `next_kernel()` hands out started kernels (a pool keeps them warm); by default
    each is started on demand.
    """
    next_kernel = next_kernel or (lambda: Kernel(limits))
    deadline = time.monotonic() + limits.submission_timeout
    measure = [i for i, c in enumerate(nb.cells) if _role(c)[0] == "measure"]
    prelude = [i for i, c in enumerate(nb.cells) if _role(c)[0] not in ("measure", "blocks")]
    blocks = [i for i, c in enumerate(nb.cells) if _role(c)[0] == "blocks"]
    runs, pending = [], list(measure)
    while pending:
        if time.monotonic() >= deadline:
            runs += [CellRun(_role(nb.cells[i])[1], (), "the submission's time limit ran out", "timeout")
                     for i in pending]
            break
        kernel = next_kernel()
        try:
            pending = _run_in_kernel(kernel, nb, prelude, blocks, pending, runs, limits, deadline)
        finally:
            kernel.close()
    return tuple(runs)


def _run_in_kernel(kernel, nb, prelude, blocks, pending, runs, limits, deadline):
    """Run the prelude, then measuring cells until one breaks the kernel; return those left."""
    client = CappedClient(nb, limits, km=kernel.km, timeout=limits.definition_timeout,
                          startup_timeout=limits.startup_timeout, allow_errors=True, record_timing=False,
                          shutdown_kernel="immediate", resources={"metadata": {"path": str(kernel.workdir)}})
    left = list(pending)
    try:
        with client.setup_kernel():
            for i in prelude:
                client.timeout = max(1, min(limits.definition_timeout, deadline - time.monotonic()))
                try:
                    client.execute_cell(nb.cells[i], i)
                except (CellTimeoutError, DeadKernelError) as exc:
                    # It would hang or crash again in a new kernel: skip it there, and say so.
                    why = "took too long" if isinstance(exc, CellTimeoutError) else "crashed the kernel"
                    nb.cells[i].source = f"# skipped by the grader: this definition {why}"
                    nb.cells[i].metadata["resnet_grader"]["skipped"] = why
                    nb.cells[i].metadata["resnet_grader"]["limit"] = "timeout" if isinstance(exc, CellTimeoutError) else "crash"
                    return left
            while left:
                i = left[0]
                function = _role(nb.cells[i])[1]
                client.timeout = max(1, min(limits.function_timeout, deadline - time.monotonic()))
                try:
                    for b in blocks if function == "ResNet50" else ():
                        client.execute_cell(nb.cells[b], b)
                    client.execute_cell(nb.cells[i], i)
                except (CellTimeoutError, DeadKernelError) as exc:
                    why = (f"took longer than its limit of {client.timeout:.0f} s" if isinstance(exc, CellTimeoutError)
                           else "crashed the kernel (it exited or was killed)")
                    runs.append(CellRun(function, (), f"measuring {function} {why}",
                                        "timeout" if isinstance(exc, CellTimeoutError) else "crash"))
                    return left[1:]
                runs.append(CellRun(function, tuple(nb.cells[i].outputs)))
                left.pop(0)
    except Exception as exc:  # the kernel died or would not start outside a measuring cell
        why = f"the kernel failed while running the notebook's definitions: {type(exc).__name__}: {exc}"
        runs.extend(CellRun(_role(nb.cells[i])[1], (), why[:500], "crash") for i in left)
        return []
    return []
