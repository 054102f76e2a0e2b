"""No student can cost a classmate a point (issue 22): one batch grades correct submissions beside
misbehaving ones (tests/neighbours.py: a fork bomb, memory across processes, a tmpfs filler, signals,
a planter), and every correct one keeps 100 while the machine stays healthy.

In each way of grading:
  (a) root, kernels as `nobody`, forked from each worker's zygote: `python -m grader grade` as it is;
  (b) root's own bubblewrap, no zygote: what the grader picks when `nobody` cannot read the checkout;
      forced here by grading in a batch with the resolved limits' run_as emptied (no flag asks for it);
  (c) an ordinary user (setpriv, as tests/test_isolation.py does);
  (d) Dask workers (a scheduler and two workers, as tests/test_dask_cluster.py starts them).
each asserts:
  - before grading, that the way caps one kernel's processes (isolation_info's caps.processes.limit):
    without a cap the fork bomb is not run and the test fails, as a missing cap is what it is for;
  - every correct submission scores 100 (half of them are lookers, which lose identity_block when
    they see a file a neighbour left);
  - while the batch runs (sampled every 0.2 s), the machine's free PIDs stay above half of pid_max
    and its MemAvailable above half of MemTotal, and the memory hog's processes together stay within
    one kernel's memory cap (a 24 GiB machine has room for its 9 GiB: MemAvailable alone would miss it);
  - nothing outlives the batch: no process naming the batch's folders or the behaviours' token, no
    `sleep 4244`, no stopped process of the kernels' user; no planted file outside;
  - no kernel waited on a stopped zygote: no "Kernel didn't respond" in any result, and the batch's
    wall time within twice what its timeouts allow.

NEIGHBOURS_NO_BOMB=1 leaves the fork bomb out (and only reports the process cap, without failing on
it), to see what the other behaviours do where there is no cap.
"""

import dataclasses
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neighbours
from grader import sandbox, zygote
from grader.sandbox import Limits

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
FUNCTION_TIMEOUT, SUBMISSION_TIMEOUT, WORKERS = 20, 120, 2
NO_BOMB = os.environ.get("NEIGHBOURS_NO_BOMB", "") not in ("", "0")
HOSTILE = tuple(k for k in neighbours.HOSTILE if not (NO_BOMB and k == "bomb"))
GRADE_OPTIONS = ["--no-progress", "--function-timeout", str(FUNCTION_TIMEOUT),
                 "--submission-timeout", str(SUBMISSION_TIMEOUT)]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
MEMORY_CAP = Limits().memory  # one kernel's, all its processes together (the grader's default, --memory)


def wall_bound(n_hostile, n_correct):
    """Twice what the timeouts allow: a misbehaving submission a function timeout and a kernel start
    (15 s) or two, a correct one 15 s, shared by the workers; a kernel start for the workers' first."""
    return 2 * (n_hostile * (FUNCTION_TIMEOUT + 30) + n_correct * 15) / WORKERS + 60


def limits():
    return Limits(function_timeout=FUNCTION_TIMEOUT, submission_timeout=SUBMISSION_TIMEOUT)


def require_cap(info, where):
    """Before grading: the way caps one kernel's processes, or no bomb and a failure."""
    if info.get("level") != "bubblewrap":
        pytest.skip(f"{where}: kernels run under {info.get('level')!r}, not bubblewrap: the signals would reach "
                    "beyond one kernel's sandbox (`make bwrap`, and unprivileged user namespaces)")
    cap = (info.get("caps") or {}).get("processes", {}).get("limit")
    said = f"{where}: caps: {json.dumps(info.get('caps'))}" if "caps" in info else \
        f"{where}: isolation_info has no 'caps' key (keys: {sorted(info)})"
    print(said)
    if cap is None and not NO_BOMB:
        pytest.fail(f"no per-kernel process cap in this mode: the bomb is not run ({said})")
    return cap


def run(argv, user=None, env=None, cwd=ROOT, timeout=600):
    """Run a grading command in a session of its own; on a timeout, kill its group. (rc, out, err, seconds)."""
    if user:
        entry = pwd.getpwnam(user)
        argv = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", *argv]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n[killed after {timeout} s]"
    return proc.returncode, out, err, time.monotonic() - start


def lost_points(result):
    """What a result lost, function by function, with the first note of each: '' when nothing."""
    by = {}
    for t in result["tests"]:
        f = t["extra_data"]["function"]
        got, full, note = by.get(f, (0, 0, ""))
        if t["score"] < t["max_score"] and not note:
            note = " ".join(t["output"].split())[:300]
        by[f] = (got + t["score"], full + t["max_score"], note)
    return "; ".join(f"{f} {got:g}/{full:g} ({note})" for f, (got, full, note) in by.items() if got < full)


def check(mode, kinds, out, rc, err, seconds, health, token, roots, users):
    """Every assertion of the issue, collected, so that one run says all that went wrong; printed too."""
    left = neighbours.wait_for_no_strays(token, roots, users)
    planted = neighbours.planted_outside(token, roots)
    neighbours.kill_strays(left)
    for path in planted:
        Path(path).unlink(missing_ok=True)

    problems, lines = [], []
    if rc != 0:
        problems.append(f"the grader exited with {rc}: {err[-3000:]}")
    n_hostile = sum(k not in ("looker", "correct") for k in kinds.values())
    for name, kind in kinds.items():
        path = out / name / "results.json"
        if not path.exists():
            problems.append(f"{name} ({kind}): no results.json")
            continue
        text = path.read_text()
        result = json.loads(text)
        lost = lost_points(result)
        lines.append(f"  {name:12} {result['score']:>5g}" + (f"  lost: {lost}" if kind in ("looker", "correct")
                                                             else f"  (its own: {lost[:160]})") * bool(lost))
        if kind in ("looker", "correct") and result["score"] != 100:
            problems.append(f"{name} ({kind}, correct) scored {result['score']:g}, losing {lost}")
        if "Kernel didn't respond" in text:
            problems.append(f"{name} ({kind}): a kernel did not respond (waited on a stopped zygote?)")
    half_pids, half_memory = neighbours.PID_MAX // 2, health.mem_total // 2
    if health.min_free_pids <= half_pids:
        problems.append(f"free PIDs fell to {health.min_free_pids} (half of pid_max is {half_pids})")
    if health.min_available <= half_memory:
        problems.append(f"MemAvailable fell to {health.min_available / 2**30:.1f} GiB "
                        f"(half of MemTotal is {half_memory / 2**30:.1f} GiB)")
    if health.max_hog > MEMORY_CAP + 2**30:  # a sampled cap (no cgroup) may be over between samples
        problems.append(f"the memory hog's processes held {health.max_hog / 2**30:.1f} GiB together, over one "
                        f"kernel's cap of {MEMORY_CAP / 2**30:.1f} GiB")
    if left:
        problems.append(f"{len(left)} processes outlived the batch: " + "; ".join(map(str, left[:12])))
    if planted:
        problems.append(f"{len(planted)} planted files outside the kernels: {planted[:8]}")
    bound = wall_bound(n_hostile, len(kinds) - n_hostile)
    if seconds > bound:
        problems.append(f"the batch took {seconds:.0f} s, over its bound of {bound:.0f} s")
    print(f"[{mode}] {len(kinds)} submissions in {seconds:.0f} s (bound {bound:.0f} s); {health.describe()}\n"
          + "\n".join(lines) + ("\n  problems:\n    " + "\n    ".join(problems) if problems else "\n  no problems"))
    assert not problems, f"[{mode}] " + "\n".join(problems)


def _grade_here(mode, tmp, kinds_of, grade, info, users=("nobody",), owner=None, extra_roots=()):
    """The common part: the cap, the class, the batch under the sampler, the checks."""
    require_cap(info, mode)
    token = neighbours.new_token()
    folder, out = tmp / "class", tmp / "out"
    kinds = neighbours.build_class(folder, token, HOSTILE, kinds_of, owner=owner)
    if owner:
        out.mkdir()
        entry = pwd.getpwnam(owner)
        for p in (folder, out):
            os.chown(p, entry.pw_uid, entry.pw_gid)
    with neighbours.Health(token) as health:
        rc, stdout, err, seconds = grade(folder, out, wall_bound(len(HOSTILE), kinds_of) + 120)
    check(mode, kinds, out, rc, err, seconds, health, token, [os.environ["TMPDIR"], tmp, *extra_roots], users)


def _root():
    if os.geteuid() != 0:
        pytest.skip("kernels as `nobody` and root's own bubblewrap are what a grader running as root does")


# ----------------------------------------------------------------------------- (a)


def test_root_kernels_as_nobody_from_zygotes(tmp_path):
    _root()
    resolved = sandbox.resolve(limits())
    if resolved is None or resolved.isolation != "bubblewrap" or resolved.run_as != "nobody":
        pytest.skip(f"the grader does not run kernels as nobody under bubblewrap here (resolved: {resolved}): "
                    "`nobody` must read the checkout and its .venv, and bubblewrap must work")
    assert zygote.enabled(resolved), "kernels as nobody under bubblewrap come from a zygote"
    tmp = neighbours.short_folder("nbA-")
    try:
        def grade(folder, out, timeout):
            return run([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out), "--workers",
                        str(WORKERS), *GRADE_OPTIONS], timeout=timeout)

        _grade_here("root, nobody, zygotes", tmp, 4, grade, sandbox.isolation_info(resolved))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- (b)

# The batch as `grade` runs it, with the resolved limits' run_as emptied: root runs bubblewrap itself,
# and every kernel starts on its own (grader.zygote.enabled is false for it).
OWN_BUBBLEWRAP = """\
import dataclasses, sys
from grader import cli, zygote
from grader.batch import Batch
from grader.local_pool import LocalPool
args = cli._parser().parse_args(sys.argv[1:])
submissions = cli.expand(args.submissions)
limits = dataclasses.replace(cli.resolved_limits(args, submissions), run_as="")
assert limits.isolation == "bubblewrap" and not zygote.enabled(limits), limits
Batch(args.out, limits, expected_dir=args.expected, progress=False,
      executor=LocalPool(limits, args.workers, args.expected)).run(submissions)
"""


def test_root_own_bubblewrap_without_zygote(tmp_path):
    _root()
    resolved = sandbox.resolve(limits())
    if resolved is None or resolved.isolation != "bubblewrap":
        pytest.skip("bubblewrap is not usable here (`make bwrap`, and unprivileged user namespaces)")
    own = dataclasses.replace(resolved, run_as="")
    if not sandbox.can_start(own):
        pytest.skip("root's own bubblewrap cannot start a kernel here")
    assert not zygote.enabled(own)
    tmp = neighbours.short_folder("nbB-")
    try:
        def grade(folder, out, timeout):
            return run([sys.executable, "-c", OWN_BUBBLEWRAP, "grade", str(folder), "--out", str(out), "--workers",
                        str(WORKERS), *GRADE_OPTIONS], timeout=timeout)

        # kernels run as root outside their user namespace: a stopped one is root's
        _grade_here("root's own bubblewrap", tmp, 3, grade, sandbox.isolation_info(own), users=("nobody", "root"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- (c)

INFO = ("import json; from grader import sandbox; "
        "print(json.dumps(sandbox.isolation_info(sandbox.resolve(sandbox.Limits()))))")


def test_ordinary_user(tmp_path):
    from test_isolation import ordinary_user

    user = ordinary_user()
    entry = pwd.getpwnam(user)
    tmp = neighbours.short_folder("nbC-")
    os.chown(tmp, entry.pw_uid, entry.pw_gid)
    env = {"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir, "LANG": "C.UTF-8", "TMPDIR": str(tmp),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        rc, out, err, _ = run([sys.executable, "-c", INFO], user=user, env=env, timeout=120)
        if rc != 0:
            pytest.fail(f"the isolation as user {user} could not be read: {err[-2000:]}")
        info = json.loads(out.strip().splitlines()[-1])

        def grade(folder, out, timeout):
            return run([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out), "--workers",
                        str(WORKERS), *GRADE_OPTIONS], user=user, env=env, timeout=timeout)

        _grade_here(f"ordinary user {user}", tmp, 3, grade, info, users=(user,), owner=user)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- (d)


def test_dask_workers(tmp_path):
    from test_dask_cluster import Cluster

    base = neighbours.short_folder("nbD-")
    cluster = Cluster(base)
    stopped = False
    try:
        with cluster.client() as c:
            infos = c.run(lambda: __import__("grader.sandbox").sandbox.isolation_info(
                __import__("grader.sandbox").sandbox.resolve(__import__("grader.sandbox").sandbox.Limits())))
        for address, info in sorted(infos.items()):
            require_cap(info, f"Dask worker {address}")

        def grade(folder, out, timeout):
            nonlocal stopped
            result = run([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out), "--scheduler",
                          cluster.address, *GRADE_OPTIONS], timeout=timeout)
            cluster.close()  # the workers' warm kernels go with them: what is left then outlived the batch
            stopped = True
            return result

        _grade_here("Dask workers", tmp_path, 3, grade, next(iter(infos.values())), extra_roots=(base,))
    finally:
        if not stopped:
            cluster.close()
        shutil.rmtree(base, ignore_errors=True)
