"""grader.watchdog: a kernel's memory capped as a whole (all its processes and its tmpfs) by sampling."""

import os
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from grader import watchdog

MiB = 1024 ** 2

# argv: children, MiB each child touches, MiB the parent touches before forking, log file, drop to nobody,
# seconds between one child's start of touching and the next's. Every process logs "child|parent <monotonic
# time>" once its memory is touched, then sleeps: nothing outlives 60 s.
TREE = r"""
import os, sys, time
children, child_mib, parent_mib, log = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
nobody, stagger = sys.argv[5] == "1", float(sys.argv[6])
def touch(mib):
    b = bytearray(mib << 20)
    b[::4096] = b"\1" * (len(b) // 4096)  # one byte a page: every page resident
    return b
def done(who):
    with open(log, "a") as f:
        f.write(f"{who} {time.monotonic()}\n")
shared = touch(parent_mib)
for i in range(children):
    if os.fork() == 0:
        if nobody:
            os.setgid(65534); os.setuid(65534)
        assert sum(shared[::4096]) == len(shared) // 4096  # read the parent's pages: they stay shared
        time.sleep(i * stagger)
        mine = touch(child_mib)
        done('child'); time.sleep(60); os._exit(0)
done('parent'); time.sleep(60)
"""


def tree_of(proc):
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def kill_tree(proc):
    procs = tree_of(proc)
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)


@pytest.fixture
def spawn(short_tmp):
    """Starts TREE; waits until all its processes have touched their memory; kills them all at the end."""
    started = []

    def start(children, child_mib, parent_mib=0, nobody=False, stagger=0.0, wait=True):
        log = short_tmp / f"log{len(started)}"  # open to nobody
        log.touch()
        log.chmod(0o666)
        proc = psutil.Popen([sys.executable, "-c", TREE, str(children), str(child_mib), str(parent_mib),
                             str(log), "1" if nobody else "0", str(stagger)])
        started.append(proc)
        deadline = time.monotonic() + 30
        while wait and len(log.read_text().splitlines()) < children + 1:
            assert proc.poll() is None and time.monotonic() < deadline, "the tree did not start"
            time.sleep(0.05)
        return proc, log

    yield start
    for proc in started:
        kill_tree(proc)


def rss(proc):
    return sum(p.memory_info().rss for p in tree_of(proc))


def kernel_memory_of(proc):
    try:
        return watchdog.kernel_memory([proc])
    except psutil.Error:
        return 0


def watched(watch, proc, limit, tmpfs=()):
    """Watch `proc`'s tree under `limit`; the returned list gets the time of the kill, which kills the tree."""
    fired = []

    def kill():
        fired.append(time.monotonic())
        kill_tree(proc)

    watch.watch(proc.pid, lambda: [proc], limit, kill, tmpfs)
    return fired


def wait_for(fired, seconds):
    deadline = time.monotonic() + seconds
    while not fired and time.monotonic() < deadline:
        time.sleep(0.02)
    return fired


@pytest.fixture
def watch():
    w = watchdog.MemoryWatch()
    yield w
    w.close()


def test_a_kernel_forking_children_is_killed_over_its_cap_as_a_whole(spawn, watch):
    """3 children of 300 MiB each, one a second, every one under a cap of 600 MiB, together over it. Run as
    root, the children are `nobody`'s, as a sandbox's are."""
    proc, log = spawn(3, 300, nobody=os.geteuid() == 0, stagger=1.0, wait=False)
    fired = watched(watch, proc, 600 * MiB)
    assert wait_for(fired, 30), f"not killed; measured {kernel_memory_of(proc) / MiB:.0f} MiB"
    done = sorted(float(t) for who, t in map(str.split, log.read_text().splitlines()) if who == "child")
    assert done and fired[0] > done[0], f"killed at {fired[0]}, under its cap: children done at {done}"
    # Two children's 600 MiB plus the Python processes' own memory: over the cap from then on, at the latest.
    late = fired[0] - done[1] if len(done) > 1 else 0
    assert late < 1.0, f"killed {late:.2f} s after it went over"
    usage = watch.unwatch(proc.pid)
    assert usage["killed"] and 600 * MiB < usage["memory_peak"] < 1200 * MiB, usage


def test_the_same_kernel_under_a_larger_cap_lives_and_its_peak_is_reported(spawn, watch):
    proc, _ = spawn(3, 300)
    fired = watched(watch, proc, 2048 * MiB)
    time.sleep(1.0)
    usage = watch.unwatch(proc.pid)
    assert not fired and not usage["killed"], usage
    assert 900 * MiB < usage["memory_peak"] < 1100 * MiB, usage  # 3 x 300 MiB, 4 Python processes


def test_pages_shared_copy_on_write_within_a_kernel_count_once(spawn, watch):
    """400 MiB allocated before 3 forks, only read by the children: 400 MiB, not 1.6 GiB as RSS says."""
    proc, _ = spawn(3, 0, parent_mib=400)
    measured, by_rss = watchdog.kernel_memory([proc]), rss(proc)
    fired = watched(watch, proc, 1024 * MiB)
    time.sleep(1.0)
    why = f"kernel_memory {measured / MiB:.0f} MiB, sum of RSS {by_rss / MiB:.0f} MiB"
    assert not fired and not watch.unwatch(proc.pid)["killed"], why
    assert 400 * MiB < measured < 500 * MiB and by_rss > 1500 * MiB, why


def test_forking_does_not_hide_memory(spawn, watch):
    """700 MiB, then a fork that only sleeps: every page is shared now, none private (USS ~ 0), yet the
    kernel holds 700 MiB, over its cap of 600."""
    proc, _ = spawn(1, 0, parent_mib=700)
    fired = watched(watch, proc, 600 * MiB)
    assert wait_for(fired, 5), f"not killed; measured {kernel_memory_of(proc) / MiB:.0f} MiB"


def test_a_kernel_pays_a_share_only_of_its_zygote(spawn, watch):
    """A zygote (outside the kernel) touched 400 MiB before forking the kernel: RSS counts them all in
    the kernel; Pss half, the kernel and the zygote sharing them."""
    zygote, _ = spawn(1, 0, parent_mib=400)
    kernel = zygote.children()[0]
    measured, by_rss = watchdog.kernel_memory([kernel.pid]), kernel.memory_info().rss
    fired = []
    watch.watch("kernel", lambda: [kernel.pid], 300 * MiB, lambda: fired.append(1))
    time.sleep(1.0)
    why = f"kernel_memory {measured / MiB:.0f} MiB, RSS {by_rss / MiB:.0f} MiB"
    assert not fired and not watch.unwatch("kernel")["killed"], why
    assert 200 * MiB < measured < 250 * MiB < 400 * MiB < by_rss, why


@pytest.fixture
def tmpfs():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs takes root")
    folder = tempfile.mkdtemp(prefix="watchdog-tmpfs-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", folder]).returncode:
        os.rmdir(folder)
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder])
        os.rmdir(folder)


def test_tmpfs_bytes_count(spawn, watch, tmpfs):
    with open(os.path.join(tmpfs, "data"), "wb") as f:
        f.write(os.urandom(50 * MiB))
    assert 50 * MiB <= watchdog.tmpfs_bytes([tmpfs, tmpfs, "/no/such/folder"]) < 51 * MiB  # each once
    proc, _ = spawn(0, 0)
    alone = watchdog.kernel_memory([proc])
    fired = watched(watch, proc, alone + 25 * MiB, tmpfs=lambda: [tmpfs])
    assert wait_for(fired, 5), f"not killed: {alone / MiB:.0f} MiB of processes and 50 MiB in its tmpfs"


def test_ended_processes_and_failing_callbacks_do_not_stop_the_watch(spawn, watch):
    ended = psutil.Popen(["true"])
    ended.wait()
    assert watchdog.kernel_memory([ended, ended.pid]) == 0
    kills = []

    def broken(*calls):
        calls and calls[0].append(1)
        raise RuntimeError("broken")

    watch.watch("broken", broken, 1, broken)
    watch.watch("failing kill", lambda: [os.getpid()], 1, lambda: broken(kills), ["/no/such/folder"])  # this one
    proc, _ = spawn(0, 0, parent_mib=50)
    fired = watched(watch, proc, 20 * MiB)
    assert wait_for(fired, 5) and watch._thread.is_alive() and watch._thread.daemon
    time.sleep(5 * watch.interval)
    assert watch.unwatch("broken") == {"memory_peak": 0, "killed": False}
    assert watch.unwatch("failing kill")["killed"] and kills == [1], "killed once, then no longer watched"
