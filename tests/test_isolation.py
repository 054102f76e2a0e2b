"""Student code touches nothing of ours: the isolation corpus (tests/hostile.py, ATTEMPTS) graded by
`python -m grader grade` as root and as an ordinary user, one notebook and in a batch.

Every attempt that works makes its function raise, so full marks mean every attempt was blocked.
Afterwards the planted files are looked for from outside. One more run with `--isolation none`
shows that the corpus does catch what an unsandboxed kernel can do.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

import notebooks
from grader import sandbox
from hostile import ATTEMPTS, isolation_sources

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
USER = "resnet-grader-test"  # the ordinary user the non-root runs use; made when missing (as root)
VENV_SITE = next(p for p in sys.path if p.startswith(sys.prefix) and p.endswith("site-packages"))


class Setting:
    """One grading run of the corpus: as whom, with which files, and where the planted files would be."""

    def __init__(self, user=""):
        self.user = user
        self.token = uuid.uuid4().hex[:12]
        self.work = Path(tempfile.mkdtemp(prefix="iso-", dir="/tmp"))
        self.out = self.work / "out"
        self.out.mkdir()
        self.submissions = self.work / "class"
        self.submissions.mkdir()
        home = Path(pwd.getpwnam(user).pw_dir if user else pwd.getpwuid(os.getuid()).pw_dir)
        self.secret = home / f".resnet-grader-secret-{self.token}"
        self.secret.write_text("the instructor's private notes")
        self.secret.chmod(0o600)
        if user:
            entry = pwd.getpwnam(user)
            for path in (self.work, self.out, self.submissions, self.secret):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.host = subprocess.Popen(["bash", "-c", f"exec -a hostmark-{self.token} sleep 600"])

    def fill(self, source):
        values = {"REPO": str(ROOT), "EXPECTED_FILE": str(ROOT / "grader" / "expected" / "identity_block.json"),
                  "HOME_SECRET": str(self.secret), "TOKEN": self.token, "SUBMISSION_DIR": str(self.submissions),
                  "OUT_DIR": str(self.out), "VENV_SITE": VENV_SITE, "HOST_MARK": f"hostmark-{self.token}",
                  "HOST_PID": str(os.getpid())}
        for key, value in values.items():
            source = source.replace(key, value)
        return source

    def planted(self):
        """Every planted file that exists, searched from outside."""
        places = [ROOT / "grader", ROOT / "solution", Path(VENV_SITE), Path("/var/tmp"), self.work, self.secret.parent]
        return [str(p) for place in places if place.is_dir() for p in place.glob(f"**/*planted-{self.token}*")]

    def grade(self, *paths, isolation="auto", workers=None):
        argv = [sys.executable, "-m", "grader", "grade", *map(str, paths), "--out", str(self.out), "--no-progress",
                "--isolation", isolation, *(["--workers", str(workers)] if workers else [])]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        if self.user:
            entry = pwd.getpwnam(self.user)
            argv = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"] + argv
            env = {"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir, "LANG": "C.UTF-8", "TMPDIR": str(self.work),
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def close(self):
        self.host.kill()
        self.host.wait()
        for path in self.planted():
            Path(path).unlink(missing_ok=True)
        self.secret.unlink(missing_ok=True)
        shutil.rmtree(self.work, ignore_errors=True)


def ordinary_user():
    """The name of an ordinary user that can run this checkout's grader, or skip."""
    if os.geteuid() != 0:
        pytest.skip("making and switching to an ordinary user needs root (as an ordinary user, the root tests "
                    "below run as that user)")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    entry = pwd.getpwnam(USER)
    probe = subprocess.run(["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
                            sys.executable, "-c", "import grader.cli"], cwd=ROOT, capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user {USER} cannot read this checkout or its .venv")
    return USER


def function_scores(results):
    scores = {}
    for t in results["tests"]:
        f = t["extra_data"]["function"]
        got, full, out = scores.get(f, (0, 0, ""))
        scores[f] = (got + t["score"], full + t["max_score"], out + t["output"])
    return scores


def assert_all_blocked(setting, results):
    assert results["extra_data"]["isolation"]["level"] == "bubblewrap"
    breached = {f: out for f, (got, full, out) in function_scores(results).items() if got != full}
    assert breached == {}, breached
    assert results["score"] == 100
    assert setting.planted() == []


@pytest.fixture(params=["root", "ordinary user"])
def setting(request):
    if request.param == "root" and os.geteuid() != 0:
        user = ""  # this run's own user is the ordinary one
    else:
        user = ordinary_user() if request.param == "ordinary user" else ""
    if sandbox.resolve(sandbox.Limits(isolation="bubblewrap")) is None:
        pytest.skip("bubblewrap is not usable here (`make bwrap`, and unprivileged user namespaces)")
    s = Setting(user)
    yield s
    s.close()


def test_every_attempt_is_blocked_in_a_single_grade(setting):
    path = notebooks.write(notebooks.solved(**{f: setting.fill(src) for f, src in isolation_sources().items()}),
                           setting.submissions / "hostile.ipynb")
    if setting.user:
        os.chown(path, pwd.getpwnam(setting.user).pw_uid, -1)
    done = setting.grade(path)
    assert "isolation: bubblewrap" in done.stdout
    assert_all_blocked(setting, json.loads((setting.out / "results.json").read_text()))


def test_every_attempt_is_blocked_in_a_batch(setting):
    hostile = notebooks.solved(**{f: setting.fill(src) for f, src in isolation_sources().items()})
    for name, nb in (("alice", notebooks.solved()), ("mallory", hostile)):
        path = notebooks.write(nb, setting.submissions / f"{name}.ipynb")
        if setting.user:
            os.chown(path, pwd.getpwnam(setting.user).pw_uid, -1)
    done = setting.grade(setting.submissions, workers=2)
    assert done.stderr.count("isolation: bubblewrap") == 1  # said once, at the start
    assert "oneDNN" not in done.stderr and "InitializeLog" not in done.stderr, done.stderr  # quiet (issue 10)
    assert_all_blocked(setting, json.loads((setting.out / "mallory" / "results.json").read_text()))
    alice = json.loads((setting.out / "alice" / "results.json").read_text())
    assert alice["score"] == 100 and alice["extra_data"]["isolation"]["level"] == "bubblewrap"


@pytest.mark.skipif(os.geteuid() != 0, reason="the breaches listed are those of a kernel running as root")
def test_the_corpus_catches_an_unsandboxed_kernel():
    """The same corpus without isolation: the attempts that need no luck all work, and cost their functions."""
    s = Setting()
    try:
        path = notebooks.write(notebooks.solved(**{f: s.fill(src) for f, src in isolation_sources().items()}),
                               s.submissions / "hostile.ipynb")
        done = s.grade(path, isolation="none")
        assert "warning: no isolation" in done.stderr
        results = json.loads((s.out / "results.json").read_text())
        assert results["extra_data"]["isolation"]["level"] == "none"
        scores = function_scores(results)
        assert all(got == 0 for got, _, _ in scores.values()), scores
        text = "\n".join(out for _, _, out in scores.values())
        for attempt in ("read-solution", "read-expected", "list-solution", "read-home", "read-root-only-file",
                        "write-grader", "write-elsewhere", "write-venv", "write-results-folder", "see-host-process",
                        "signal-host-process"):
            assert attempt in text, (attempt, text)
        assert s.planted()  # they were really written, and are found from outside
    finally:
        s.close()


def test_every_attempt_names_a_placeholder_the_test_fills():
    s = Setting()
    try:
        for a in ATTEMPTS:
            filled = s.fill(a.code)
            assert not any(k in filled for k in ("REPO", "TOKEN", "OUT_DIR", "HOST_MARK", "HOST_PID")), a.id
    finally:
        s.close()
