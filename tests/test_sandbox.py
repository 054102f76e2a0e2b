"""The kernel's launcher command lines, checked without starting anything (grader/sandbox.py)."""

import os
import sys
from pathlib import Path

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
        "level": "bubblewrap", "summary": sandbox.describe(Limits(isolation="bubblewrap"))[0]}
    assert "warning: no isolation" in sandbox.isolation_info(Limits(isolation="none"))["warning"]
    assert "warning" in sandbox.isolation_info(Limits(isolation="namespaces"))
    assert "as user nobody" in sandbox.describe(Limits(isolation="none", run_as="nobody"))[0]


def test_a_venv_under_tmp_is_bound_on_top_of_the_kernels_own_tmp():
    """The kernel's empty /tmp is mounted before the read-only binds, so a clone kept under /tmp still runs."""
    argv = sandbox.bwrap_argv(sandbox.View(("/usr", "/tmp/clone/.venv"), (), "/tmp/rg/work", "/tmp/rg/sockets"), Limits())
    tmp = next(i for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] == "/tmp")
    assert tmp < argv.index("/tmp/clone/.venv") < argv.index("/tmp/rg/work")
