"""grader.cgroups: one cgroup per kernel. On this machine (root, cgroup v1) for real: the pids cap stops
a forker near its limit, the memory cap OOM-kills what allocates past it, kill() empties a group of
stopped, setsid and double-forked processes (and of a fork bomb racing it), remove() and the cleanup
of dead graders' folders leave nothing. cgroup v2's folder and file writing against a fake tree."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from grader import cgroups

MiB = 1 << 20


@pytest.fixture(autouse=True)
def fresh_find():
    cgroups.find.cache_clear()
    yield
    cgroups.find.cache_clear()


@pytest.fixture
def hierarchy():
    found = cgroups.find()
    if found is None:
        pytest.skip(f"no usable cgroups here: {cgroups.why_not()}")
    return found


@pytest.fixture
def group_of(hierarchy):
    made = []

    def make(processes=100, memory=1 << 30):
        made.append(hierarchy.new_group(processes=processes, memory=memory))
        return made[-1]

    yield make
    for group in made:
        group.remove()


def start_in(group, code, **kw):
    """Python running `code`, moved into `group` by a shell prefix before it execs (as the grader does)."""
    moves = "".join(f'echo $$ > "${i + 1}" && ' for i in range(len(group.procs_files)))
    argv = ["/bin/sh", "-c", f'{moves}shift {len(group.procs_files)} && exec "$@"', "in-cgroup",
            *group.procs_files, sys.executable, "-I", "-c", textwrap.dedent(code)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kw)


def gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_find_is_off_with_GRADER_CGROUPS_0(monkeypatch):
    monkeypatch.setenv("GRADER_CGROUPS", "0")
    assert cgroups.find() is None
    assert "GRADER_CGROUPS=0" in cgroups.why_not()


def test_found_here_says_how(hierarchy):
    assert cgroups.why_not() == ""
    assert hierarchy.version in (1, 2)
    assert hierarchy.describe().startswith(f"cgroup v{hierarchy.version} (")
    assert all(os.path.isdir(parent) for parent in hierarchy.parents)
    assert cgroups.find() is hierarchy  # cached


def test_pids_cap_stops_a_forker_near_it_and_nothing_outside(group_of):
    group = group_of(processes=20)
    child = start_in(group, """
        import os, sys, time
        kids, error = [], None
        for _ in range(100):  # linear: one parent forks sleeping children
            try:
                pid = os.fork()
            except OSError as exc:
                error = exc.errno
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
        print(len(kids), error, flush=True)
        sys.stdin.readline()  # hold them while the test forks outside
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    """, stdin=subprocess.PIPE)
    forked, error = child.stdout.readline().split()
    assert error == str(errno.EAGAIN)
    assert int(forked) == 19  # 20 with the forker itself
    assert sorted(group.pids()) == sorted([child.pid] + [p.pid for p in psutil.Process(child.pid).children()])
    outside = [subprocess.Popen(["sleep", "30"]) for _ in range(40)]  # the group is full; this process is not in it
    for proc in outside:
        proc.kill()
        proc.wait()
    child.communicate("\n", timeout=30)
    used = group.usage()
    assert used["process_limit_hits"] >= 1
    if "processes_peak" in used:
        assert used["processes_peak"] == 20
    assert group.pids() == []


def test_memory_cap_oom_kills_what_allocates_past_it(group_of):
    group = group_of(memory=200 * MiB)
    child = start_in(group, """
        import os, time
        kids = []
        for _ in range(3):  # 600 MiB in all, 200 MiB each, every page touched
            pid = os.fork()
            if pid == 0:
                block = bytearray(200 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(2)
                os._exit(0)
            kids.append(pid)
        print(*[os.waitpid(pid, 0)[1] for pid in kids], flush=True)
    """)
    out, _ = child.communicate(timeout=60)
    statuses = [int(s) for s in out.split()]
    assert child.returncode == -signal.SIGKILL or signal.SIGKILL in statuses, (child.returncode, out)
    used = group.usage()
    assert 150 * MiB < used["memory_peak"] <= 200 * MiB, used
    if group.version == 2 or "oom_kill " in open(os.path.join(group.memory_leaf, "memory.oom_control")).read():
        assert used["oom_kills"] >= 1, used


def test_kill_empties_it_of_stopped_setsid_and_double_forked(group_of):
    group = group_of()
    child = start_in(group, """
        import os, signal, time
        def fork(then):
            pid = os.fork()
            if pid == 0:
                then()
                os._exit(0)
            return pid
        def stop():
            os.kill(os.getpid(), signal.SIGSTOP)
        def session():
            os.setsid()
            time.sleep(60)
        read, write = os.pipe()
        def orphan():  # double fork: the grandchild leaves its session, reports its PID and stops
            def grandchild():
                os.setsid()
                os.write(write, b"%d\\n" % os.getpid())
                stop()
            fork(grandchild)
        stopped, daemon = fork(stop), fork(session)
        os.waitpid(fork(orphan), 0)
        grandchild = int(os.read(read, 32))
        print(os.getpid(), stopped, daemon, grandchild, flush=True)
        time.sleep(60)
    """)
    pids = [int(p) for p in child.stdout.readline().split()]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and {psutil.Process(pids[1]).status(), psutil.Process(pids[3]).status()} \
            != {psutil.STATUS_STOPPED}:
        time.sleep(0.05)
    assert set(pids) <= set(group.pids())
    assert psutil.Process(pids[3]).ppid() != pids[0]  # really orphaned
    assert group.kill(timeout=5)
    assert group.pids() == []
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert all(gone(pid) for pid in pids), [(pid, gone(pid)) for pid in pids]


def test_kill_outruns_a_fork_bomb_held_by_the_pids_cap(group_of):
    group = group_of(processes=30)
    with open(os.path.join(group.pids_leaf, "pids.max")) as f:
        assert f.read().strip() == "30"  # the bomb below is safe only under the cap
    child = start_in(group, """
        import os, time
        deadline = time.monotonic() + 20  # ends by itself whatever happens
        while time.monotonic() < deadline:
            try:
                os.fork()  # every child forks too
            except OSError:
                time.sleep(0.01)
    """)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(group.pids()) < 25:
        time.sleep(0.02)
    assert len(group.pids()) >= 25
    assert group.kill(timeout=10)
    assert group.pids() == []
    assert child.wait(timeout=5) == -signal.SIGKILL


def test_remove_leaves_no_folder(group_of):
    group = group_of()
    child = start_in(group, "print('in', flush=True); import time; time.sleep(60)")
    assert child.stdout.readline() == "in\n"
    assert group.pids() == [child.pid]
    group.remove()
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert not any(os.path.exists(leaf) for leaf in group.leaves)
    group.remove()  # twice: never raises


def test_a_dead_graders_empty_folders_go_and_others_stay(hierarchy):
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "30"])
    me = os.getpid()
    names = {"dead": f"{cgroups.PREFIX}{dead.pid}-12345",
             "reused": f"{cgroups.PREFIX}{me}-1",  # our PID, another start time: a grader long gone
             "busy": f"{cgroups.PREFIX}{dead.pid}-12346",
             "alive": f"{cgroups.PREFIX}{alive.pid}-{cgroups._start_time(alive.pid)}"}
    bases = [os.path.dirname(parent) for parent in hierarchy.parents]
    try:
        for base in bases:
            for name in names.values():
                os.makedirs(os.path.join(base, name, "k1"))
        busy = cgroups.Group(hierarchy.version, *[os.path.join(os.path.dirname(b), names["busy"], "k1") if b else None
                                                  for b in (hierarchy.pids_dir, hierarchy.memory_dir, hierarchy.cpu_dir)])
        busy.add(alive.pid)
        cgroups.find.cache_clear()
        assert cgroups.find() is not None  # cleans up when it first succeeds
        for base in bases:
            assert not os.path.exists(os.path.join(base, names["dead"]))
            assert not os.path.exists(os.path.join(base, names["reused"]))
            assert os.path.exists(os.path.join(base, names["busy"], "k1"))  # a process is still in it
            assert os.path.exists(os.path.join(base, names["alive"], "k1"))
    finally:
        alive.kill()
        alive.wait()
        for base in bases:
            for name in names.values():
                for folder in (os.path.join(base, name, "k1"), os.path.join(base, name)):
                    cgroups._rmdir(folder, wait=2.0)
    assert not any(os.path.exists(os.path.join(b, n)) for b in bases for n in names.values())


# cgroup v2, against a fake tree: plain folders and files stand for cgroupfs


@pytest.fixture
def fake_v2(tmp_path):
    own = tmp_path / "user.slice" / "user-1000.slice" / "app.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpu io memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("")
    mountinfo = f"25 1 0:22 / {tmp_path} rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
    return own, mountinfo, "0::/user.slice/user-1000.slice/app.scope\n"


def test_v2_found_from_proc_self_cgroup_enables_controllers_and_writes_limits(fake_v2):
    own, mountinfo, self_cgroup = fake_v2
    found, bases = cgroups.discover(self_cgroup, mountinfo)
    parent = own / cgroups._parent_name()
    assert (found.version, found.parents, bases) == (2, (str(parent),), [str(own)])
    assert str(own) in found.describe() and found.describe().startswith("cgroup v2 (")
    # cpu too, where it is delegated: kernels share the CPU equally however many processes each runs
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert "cpu shared" in found.describe()
    group = found.new_group(processes=20, memory=300 * MiB)
    leaf = parent / os.path.basename(group.leaves[0])
    assert group.leaves == (str(leaf),) and group.procs_files == (str(leaf / "cgroup.procs"),)
    assert (leaf / "pids.max").read_text() == "20"
    assert (leaf / "memory.max").read_text() == str(300 * MiB)
    (leaf / "memory.peak").write_text("1234\n")
    (leaf / "pids.current").write_text("3\n")
    (leaf / "pids.peak").write_text("7\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n")
    (leaf / "pids.events").write_text("max 4\n")
    assert group.usage() == {"memory_peak": 1234, "processes_now": 3, "processes_peak": 7, "oom_kills": 1,
                             "process_limit_hits": 4}
    (leaf / "cgroup.procs").write_text("")
    (leaf / "cgroup.kill").write_text("")
    assert group.kill(timeout=0.1) and (leaf / "cgroup.kill").read_text() == "1"
    group.remove()  # the fake leaf holds files, so rmdir fails: never raises


def test_v2_moves_itself_out_where_its_own_cgroup_has_processes(fake_v2, monkeypatch):
    own, _, _ = fake_v2
    moved = own / f"grader-{os.getpid()}" / "cgroup.procs"
    write = cgroups._write

    def linux(path, text):  # EBUSY while this process is still in `own`
        if path == str(own / "cgroup.subtree_control") and not (moved.exists() and moved.read_text()):
            raise OSError(errno.EBUSY, "Device or resource busy")
        write(path, text)

    monkeypatch.setattr(cgroups, "_write", linux)
    found, _ = cgroups.v2(str(own))
    assert moved.read_text() == str(os.getpid())
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert os.path.dirname(found.pids_dir) == str(own)
    # a process it starts (in grader-<pid>) makes its folders beside, under `own`
    (moved.parent / "cgroup.controllers").write_text("memory pids")
    (moved.parent / "cgroup.subtree_control").write_text("")
    found, bases = cgroups.v2(str(moved.parent))
    assert bases == [str(own)] and os.path.dirname(found.pids_dir) == str(own)


def test_v2_says_why_not(fake_v2, monkeypatch):
    own, mountinfo, self_cgroup = fake_v2
    write = cgroups._write

    def busy(path, text):  # other processes in `own`: Linux refuses whatever this process does
        if path.endswith("subtree_control"):
            raise OSError(errno.EBUSY, "Device or resource busy")
        write(path, text)

    monkeypatch.setattr(cgroups, "_write", busy)
    with pytest.raises(cgroups.Unusable, match="other processes share"):
        cgroups.v2(str(own))
    assert (own / "cgroup.procs").read_text() == str(os.getpid())  # moved back
    assert not (own / cgroups._parent_name()).exists()
    (own / "cgroup.controllers").write_text("cpu io\n")
    found, why = cgroups.discover(self_cgroup, mountinfo)
    assert found is None
    assert why.startswith("no writable pids and memory cgroup: cgroup v2: ")
    assert "has no memory and pids controllers" in why and "cgroup v1: no pids and memory hierarchies" in why


def test_v1_paths_inside_a_container_mount(monkeypatch):
    seen = []
    monkeypatch.setattr(cgroups, "v1", lambda pids, memory, cpu: seen.append((pids, memory, cpu)) or ("found", []))
    mountinfo = ("30 25 0:27 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
                 "31 25 0:28 / /sys/fs/cgroup/cpu,memory rw - cgroup cgroup rw,cpu,memory\n")
    self_cgroup = "5:pids:/docker/abc/job\n4:cpu,memory:/docker/abc\n"
    assert cgroups.discover(self_cgroup, mountinfo) == ("found", [])
    assert seen == [("/sys/fs/cgroup/pids/job", "/sys/fs/cgroup/cpu,memory/docker/abc", "/sys/fs/cgroup/cpu,memory/docker/abc")]


def test_kernels_share_the_cpu_equally_however_many_processes_each_runs(hierarchy, group_of):
    """A kernel spinning 20 processes gets no more of the CPU than one spinning 1: its one process runs
    far more than each of the 20 (in one group, each would get the same)."""
    if hierarchy.cpu_dir is None:
        pytest.skip(f"no cpu controller for the grader here ({hierarchy.describe()})")
    spin = "import os, time\nn = int(os.environ['SPIN'])\nfor _ in range(n - 1):\n    if os.fork() == 0:\n" \
           "        break\nend = time.monotonic() + 3\nwhile time.monotonic() < end:\n    pass\n"
    many, one = group_of(), group_of()
    crowd = start_in(many, spin, env={**os.environ, "SPIN": "20"})
    alone = start_in(one, spin, env={**os.environ, "SPIN": "1"})
    try:
        time.sleep(2)  # all spinning by now
        cpu = {}
        for name, proc in (("crowd", crowd), ("alone", alone)):
            procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            cpu[name] = [sum(p.cpu_times()[:2]) for p in procs]
        per_crowd_process = sum(cpu["crowd"]) / len(cpu["crowd"])
        assert len(cpu["crowd"]) == 20 and cpu["alone"][0] > 4 * per_crowd_process, cpu
    finally:
        for proc in (crowd, alone):
            proc.kill()
            proc.wait()


def test_v2_without_cpu_delegated_still_caps_processes_and_memory(fake_v2, monkeypatch):
    own, mountinfo, self_cgroup = fake_v2
    write = cgroups._write

    def linux(path, text):  # cpu not delegated: Linux refuses the whole write
        if "+cpu" in text:
            raise OSError(errno.ENOENT, "No such file or directory")
        write(path, text)

    monkeypatch.setattr(cgroups, "_write", linux)
    found, _ = cgroups.discover(self_cgroup, mountinfo)
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert found.cpu_dir is None and "cpu shared" not in found.describe()
