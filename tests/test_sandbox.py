"""The kernel's launcher command lines, checked without starting anything (grader/sandbox.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import sandbox
from grader.sandbox import Limits

ROOT = Path(__file__).resolve().parent.parent


def _visible(view, path):
    """Whether `path` is inside the view and not masked."""
    inside = any(sandbox._is_under(path, r) for r in view.read_only)
    return inside and not any(sandbox._is_under(path, m) for m in view.masked)


def test_the_view_holds_the_interpreter_and_not_the_solution_grader_results_or_home(tmp_path):
    out, submissions = tmp_path / "out", tmp_path / "class"
    limits = Limits(isolation="bubblewrap", hide=(str(out), str(submissions)))
    view = sandbox.make_view(limits, tmp_path / "work", tmp_path / "sockets")
    assert _visible(view, sys.executable) and _visible(view, os.path.realpath(sys.executable))
    assert _visible(view, sys.prefix) and _visible(view, "/usr/lib")
    for hidden in (ROOT / "solution", ROOT / "grader" / "expected", ROOT / "grader", out, submissions,
                   Path.home(), "/etc/shadow"):
        assert not _visible(view, os.path.realpath(hidden)), hidden


def test_hidden_paths_inside_the_venv_are_masked(tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    (venv / "lib" / "solution").mkdir(parents=True)
    monkeypatch.setattr(sandbox, "interpreter_paths", lambda: (str(venv),))
    view = sandbox.make_view(Limits(hide=(str(venv / "lib" / "solution"),)), tmp_path / "w", tmp_path / "s")
    assert str(venv) in view.read_only and str(venv / "lib" / "solution") in view.masked


def test_a_hidden_folder_holding_the_import_path_is_not_masked(tmp_path):
    site = next(p for p in sys.path if p.startswith(sys.prefix) and p.endswith("site-packages"))
    view = sandbox.make_view(Limits(hide=(site,)), tmp_path / "w", tmp_path / "s")  # a class kept in site-packages
    assert _visible(view, site)


def test_bwrap_command_line_names_every_hole(tmp_path):
    limits = Limits(isolation="bubblewrap")
    view = sandbox.make_view(limits, tmp_path / "work", tmp_path / "sockets")
    argv = sandbox.kernel_argv(limits, view)
    line = " ".join(argv)
    assert argv[0] == "bwrap" and "--share-net" not in argv
    for flag in ("--die-with-parent", "--unshare-all", "--new-session", "--uid 65534", "--remount-ro /",
                 f"--tmpfs {tmp_path / 'work'}", f"--bind {tmp_path / 'sockets'} {tmp_path / 'sockets'}",
                 f"--ro-bind {sys.prefix} {sys.prefix}", "prlimit --data="):
        assert flag in line, flag
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert str(ROOT) not in binds and not any(sandbox._is_under(ROOT / "solution", b) for b in binds if b != "/dev/null")
    assert "--share-net" in sandbox.kernel_argv(Limits(isolation="bubblewrap", network=True), view)


def test_as_root_the_user_changes_before_bwrap_and_after_unshare():
    bw = sandbox.kernel_argv(Limits(isolation="bubblewrap", run_as="nobody"),
                             sandbox.View(("/usr",), (), "/tmp/w", "/tmp/s"))
    assert bw.index("--reuid=nobody") < bw.index("bwrap")
    ns = sandbox.kernel_argv(Limits(isolation="namespaces", run_as="nobody"))
    assert ns.index("unshare") < ns.index("--reuid=nobody")
    # changing user clears a parent-death signal: it is asked for again after the change
    assert ns.index("--pdeathsig", ns.index("--reuid=nobody")) > ns.index("--reuid=nobody")
    none = sandbox.kernel_argv(Limits(isolation="none"))
    assert none[:3] == ["setpriv", "--pdeathsig", "KILL"] and "unshare" not in none


def test_every_level_is_described_and_the_weak_ones_warn():
    assert sandbox.isolation_info(Limits(isolation="bubblewrap")) == {
        "level": "bubblewrap", "summary": sandbox.describe(Limits(isolation="bubblewrap"))[0],
        "caps": sandbox.caps(Limits(isolation="bubblewrap"))}
    assert "warning: no isolation" in sandbox.isolation_info(Limits(isolation="none"))["warning"]
    assert "warning" in sandbox.isolation_info(Limits(isolation="namespaces"))
    assert "as user nobody" in sandbox.describe(Limits(isolation="none", run_as="nobody"))[0]


def test_a_venv_under_tmp_is_bound_on_top_of_the_kernels_own_tmp():
    """The kernel's empty /tmp is mounted before the read-only binds, so a clone kept under /tmp still runs."""
    argv = sandbox.bwrap_argv(sandbox.View(("/usr", "/tmp/clone/.venv"), (), "/tmp/rg/work", "/tmp/rg/sockets"), Limits())
    tmp = next(i for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] == "/tmp")
    assert tmp < argv.index("/tmp/clone/.venv") < argv.index("/tmp/rg/work")


class _FakeCgroups:
    def describe(self):
        return "cgroup v9 (fake)"


@pytest.mark.parametrize("where", ["cgroups", "ordinary user", "root as nobody", "root's own bubblewrap", "no sandbox"])
def test_the_caps_say_what_holds_per_kernel_and_how(where, monkeypatch):
    from grader import cgroups

    monkeypatch.setattr(cgroups, "find", lambda: _FakeCgroups() if where == "cgroups" else None)
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000 if where == "ordinary user" else 0)
    limits = Limits(isolation="none" if where == "no sandbox" else "bubblewrap",
                    run_as="nobody" if where == "root as nobody" else "", processes=300)
    caps = sandbox.caps(limits)
    processes, memory = caps["processes"], caps["memory"]
    if where == "cgroups":
        assert processes["limit"] == 300 and "cgroup v9" in processes["how"] and "cgroup v9" in memory["how"]
    elif where in ("ordinary user", "root as nobody"):
        assert processes["limit"] == 300 and "RLIMIT_NPROC" in processes["how"] and "own user namespace" in processes["how"]
        assert "sampled by the grader" in memory["how"]
    else:  # root's uid is exempt from RLIMIT_NPROC; without a sandbox it would count all the user's processes
        assert processes["limit"] is None and processes["how"].startswith("none")
    assert memory["limit"] == limits.memory
    assert (caps["tmpfs"]["limit"] == limits.scratch) == (where != "no sandbox")


def test_no_writable_place_is_shared_and_every_tmpfs_is_sized():
    argv = sandbox.bwrap_argv(sandbox.View(("/usr", "/etc"), ("/etc/ssh",), "/tmp/rg/work", "/tmp/rg/sockets"),
                              Limits(scratch=1234))
    pairs = list(zip(argv, argv[1:]))
    for mask in ("/etc/ssh",):
        assert ("--remount-ro", mask) in pairs[pairs.index(("--tmpfs", mask)):]
    assert ("--remount-ro", "/dev") in pairs[pairs.index(("--dev", "/dev")):]
    if sandbox._bwrap_has_size():
        for place in ("/tmp", "/dev/shm", "/tmp/rg/work"):
            i = argv.index(place)  # its first mention: where it is mounted
            assert argv[i - 3:i - 1] == ["--size", "1234"] and argv[i - 1] == "--tmpfs", place


def test_the_process_cap_goes_where_linux_counts_it_per_kernel(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: f"/usr/bin/{name}")
    view = sandbox.View(("/usr",), (), "/tmp/rg/work", "/tmp/rg/sockets")
    nobody = Limits(isolation="bubblewrap", run_as="nobody", processes=77)
    assert "--nproc=77" in sandbox.kernel_argv(nobody, view)
    assert "--nproc=77" not in sandbox.kernel_argv(nobody, view, nproc=False)  # a zygote: its forks set their own
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    assert not any(a.startswith("--nproc") for a in sandbox.kernel_argv(Limits(isolation="bubblewrap"), view))
    assert not any(a.startswith("--nproc") for a in sandbox.kernel_argv(Limits(isolation="none", run_as="nobody")))


def test_a_command_in_a_cgroup_moves_itself_in_before_anything_else(tmp_path):
    procs = [tmp_path / "a.procs", tmp_path / "b.procs"]
    argv = sandbox.in_cgroup(["sh", "-c", "echo $$"], [str(p) for p in procs])
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert [p.read_text().strip() for p in procs] == [done.stdout.strip()] * 2  # the same process: exec, no fork
    assert sandbox.in_cgroup(["true"], ()) == ["true"]
    procs[0].with_name("missing").mkdir()
    failed = subprocess.run(sandbox.in_cgroup(["echo", "ran"], [str(tmp_path / "missing" / "x" / "procs")]),
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "ran" not in failed.stdout  # never runs outside its cgroup


def test_a_hidden_folder_inside_another_is_hidden_with_it(tmp_path):
    """Masks are read-only, so none can be mounted inside another: the inner one (the expected outputs
    inside an installed grader; /etc/ssl/private inside a hidden /etc/ssl) is left to the outer."""
    if not os.path.isdir("/etc/ssl/private"):
        pytest.skip("no /etc/ssl/private here")
    view = sandbox.make_view(Limits(hide=("/etc/ssl",)), tmp_path / "work", tmp_path / "sockets")
    assert "/etc/ssl" in view.masked and "/etc/ssl/private" not in view.masked
    assert "/etc/ssl/private" in sandbox.make_view(Limits(), tmp_path / "work", tmp_path / "sockets").masked
