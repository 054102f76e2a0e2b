"""A cap on each kernel's memory as a whole, by sampling, where Linux gives the grader no cgroup.

RLIMIT_DATA holds per process: a kernel that forks 3 children gets 3 times its cap. So one thread of
the grader sums, every INTERVAL, the memory of each watched kernel's processes plus the bytes in its
tmpfs folders, and calls that kernel's `kill` the first time the sum goes over its cap.

The measure is Pss + SwapPss (/proc/<pid>/smaps_rollup): a page that n processes map counts 1/n in each.
- RSS counts a page in every process that maps it: the zygote's TensorFlow (shared copy-on-write)
  would count in full in every process of every kernel.
- Private pages alone (USS) are dodged by forking: whatever a process allocated before forking a child
  that only sleeps is shared from then on, and counted nowhere.
With Pss, pages shared among a kernel's own processes count once, in full; those still shared with the
zygote count a fraction, never more than the zygote holds (measured: a forked kernel of
3 processes, next to a zygote of 209 MiB anonymous + 309 MiB of files: RSS 670 MiB; Pss 256, 188, 144 MiB
with 1, 2, 4 such kernels alive; USS 90 MiB).

Cost of one sample, as the thread runs it (2 CPUs, Linux 6.18, ~100 processes on the machine): 3.3 ms for
a kernel of 30 small Python processes; 2.7 ms for one process of numpy and 1 GiB (huge pages, as numpy
asks), 8.4 ms without huge pages (smaps_rollup walks the page tables: ~4 ms a GiB of 4 KiB pages); finding
every kernel's processes is one pass over /proc. Hence INTERVAL = 0.2 s (1.7% of a core for those 30
processes); and the thread waits at least 49 times what its last sample cost, so it stays under 2% of one
core however many kernels and GiB it watches, at the price of sampling less often (0.42 s for that 1 GiB).
"""

import os
import threading
import time

import psutil

INTERVAL = 0.2  # s between samples, at least
BUDGET = 0.02  # of one core, at most
_FIELDS = (b"Pss:", b"SwapPss:")


def _children():
    """{ppid: [pid]} of every process, in one pass over /proc (psutil's children() makes one pass per call)."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            kids.setdefault(ppid, []).append(int(name))
    return kids


def _tree(roots, kids):
    """The PIDs of `roots` (psutil.Process or PIDs) and of every process under them."""
    pids, todo = set(), []
    for root in roots:
        if isinstance(root, psutil.Process):
            if not root.is_running():  # ended, or its PID is another process's now
                continue
            root = root.pid
        todo.append(int(root))
    while todo:
        pid = todo.pop()
        if pid not in pids:
            pids.add(pid)
            todo += kids.get(pid, ())
    return pids


def _memory(pid):
    """One process's Pss + SwapPss in bytes; 0 if it has ended."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            return 1024 * sum(int(line.split()[1]) for line in f.read().splitlines() if line.startswith(_FIELDS))
    except OSError:  # ended; or no right to trace it, or Linux < 4.14: its RSS then (statm: anyone reads it)
        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0


def kernel_memory(procs):
    """The memory of a kernel whose processes are `procs` (psutil.Process or PIDs) and all under them."""
    return sum(map(_memory, _tree(procs, _children())))


def tmpfs_bytes(paths):
    """The bytes used in the file systems of `paths`, each file system once; unreadable ones count 0."""
    seen, total = set(), 0
    for path in paths:
        try:
            device = os.stat(path).st_dev
            if device not in seen:
                seen.add(device)
                st = os.statvfs(path)
                total += (st.f_blocks - st.f_bfree) * st.f_frsize
        except OSError:
            pass
    return total


class MemoryWatch:
    """One sampling thread per grader process, watching every live kernel."""

    def __init__(self, interval: float = INTERVAL):
        self.interval = interval
        self._kernels = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grader-memory-watch", daemon=True)
        self._thread.start()

    def watch(self, key, processes, limit: int, kill, tmpfs=()) -> None:
        """Watch a kernel: `processes()` gives its roots, `tmpfs` (or `tmpfs()`) its tmpfs folders; `kill()`
        runs once, from the watch thread, the first time their total passes `limit` bytes."""
        with self._lock:
            self._kernels[key] = {"processes": processes, "tmpfs": tmpfs, "limit": limit, "kill": kill,
                                  "peak": 0, "killed": False}

    def unwatch(self, key) -> dict:
        """Stop watching a kernel; what it used at most, as sampled, and whether it was killed for it."""
        with self._lock:
            kernel = self._kernels.pop(key, None) or {"peak": 0, "killed": False}
        return {"memory_peak": kernel["peak"], "killed": kernel["killed"]}

    def close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self):
        while True:
            spent = time.thread_time()
            try:
                self._sample()
            except Exception:
                pass  # the next sample may do better; the grader must not lose its watch
            spent = time.thread_time() - spent
            if self._stop.wait(max(self.interval, spent / BUDGET - spent)):
                return

    def _sample(self):
        with self._lock:
            kernels = [(key, k) for key, k in self._kernels.items() if not k["killed"]]
        if not kernels:
            return
        kids = _children()
        for key, kernel in kernels:
            try:
                tmpfs = kernel["tmpfs"]() if callable(kernel["tmpfs"]) else kernel["tmpfs"]
                total = sum(map(_memory, _tree(kernel["processes"](), kids))) + tmpfs_bytes(tmpfs)
            except Exception:
                continue
            with self._lock:
                if self._kernels.get(key) is not kernel:  # unwatched meanwhile
                    continue
                kernel["peak"] = max(kernel["peak"], total)
                over = kernel["killed"] = total > kernel["limit"]
            if over:
                try:
                    kernel["kill"]()
                except Exception:
                    pass
