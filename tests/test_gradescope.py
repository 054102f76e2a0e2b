"""The Gradescope package and the container image.

autograder.zip is built, unpacked into a temporary folder laid out like /autograder, and its
run_autograder is run there (AUTOGRADER_ROOT points at it; this venv's python stands in for the
one setup.sh would install). The Dockerfile is parsed and checked against the zip: same files,
same setup.sh, same entry point. Building and running the image is `make image-test`
(scripts/image_test.py), not part of the suite: it downloads TensorFlow into the image.
"""

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gradescope_build", ROOT / "gradescope" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("zip") / "autograder.zip"
    build.build(path)
    return path


def unpack(zip_path, dest):
    """What Gradescope does with the zip: unpack it with its file modes."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)


@pytest.fixture
def autograder(tmp_path, zip_path):
    """A /autograder tree: source/ (the zip), run_autograder (copied out, as Gradescope does), submission/."""
    root = tmp_path / "autograder"
    unpack(zip_path, root / "source")
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder(root, timeout=600, **env):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root.parent), "TMPDIR": str(root.parent),
           "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable, **env}
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          errors="replace", timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    out = root / "results" / "results.json"
    assert out.is_file(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


def fake_python(tmp_path, script):
    """A stand-in for the venv's python: a bash script, to make the grader fail, hang or report its arguments."""
    path = tmp_path / "fake-python"
    path.write_text("#!/usr/bin/env bash\n" + script)
    path.chmod(0o755)
    return str(path)


# -- the zip ------------------------------------------------------------------------------------

def test_zip_holds_the_scripts_grader_and_lock_and_nothing_else(zip_path, tmp_path):
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        lock = zf.read("requirements.lock")
        blocks = zf.read("solution/blocks.py")
    assert {"setup.sh", "run_autograder", "requirements.lock", "grader/__main__.py", "grader/cli.py",
            "solution/blocks.py", "solution/v2021.py", "solution/current.py", "grader/versions/2021/version.json",
            "grader/expected/current/ResNet50.h5"} <= names  # every notebook version's reference and expected outputs
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "grader" / "expected").iterdir() if p.is_file()}
    assert expected and expected <= names
    assert {n for n in names if n.startswith("grader/")} == {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "grader").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")}
    assert lock == (ROOT / "requirements.lock").read_bytes()
    assert blocks == (ROOT / "solution" / "blocks.py").read_bytes()
    assert not [n for n in names if re.match(r"(tests|\.venv|data|examples|assignment|signs|build)/", n)
                or "__pycache__" in n or n.endswith(".pyc") or n == "solution/train.py"]
    build.build(tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == zip_path.read_bytes(), "the zip is not reproducible"


def test_make_gradescope_builds_the_zip_with_the_builder():
    proc = subprocess.run(["make", "-n", "gradescope"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "gradescope/build.py" in proc.stdout and "autograder.zip" in proc.stdout


# -- run_autograder on real submissions -----------------------------------------------------------

@pytest.mark.slow
def test_correct_submission_scores_full_marks(autograder):
    import notebooks
    notebooks.write(notebooks.solved(), autograder / "submission" / "ResNets.ipynb")
    r = run_autograder(autograder)
    assert r["score"] == 100
    assert len(r["tests"]) == 12 and all(t["score"] == t["max_score"] for t in r["tests"])


def test_broken_submission_scores_zero_and_says_why(autograder):
    (autograder / "submission" / "ResNets.ipynb").write_text("this is not a notebook {")
    r = run_autograder(autograder)
    assert r["score"] == 0
    assert "ResNets.ipynb is not a notebook: it is not JSON" in r["output"]
    assert r["tests"] and all(t["score"] == 0 for t in r["tests"])


# -- results.json is never missing -------------------------------------------------------------------

def test_results_written_when_the_python_cannot_run(autograder):
    (autograder / "submission" / "ResNets.ipynb").write_text("{}")
    results = autograder / "results"
    results.mkdir()
    (results / "results.json").write_text('{"score": 100}')  # stale, from an earlier run: must not survive
    r = run_autograder(autograder, AUTOGRADER_PYTHON="/bin/false")
    assert r["score"] == 0 and r["tests"] == []
    assert "Grading failed: the grader stopped (exit status 1)" in r["output"]


def test_results_written_when_the_source_is_missing(autograder):
    (autograder / "submission" / "ResNets.ipynb").write_text("{}")
    shutil.rmtree(autograder / "source")
    r = run_autograder(autograder)
    assert r["score"] == 0 and "no grader in" in r["output"]


def test_results_written_when_grading_hangs(autograder, tmp_path):
    (autograder / "submission" / "ResNets.ipynb").write_text("{}")
    r = run_autograder(autograder, AUTOGRADER_PYTHON=fake_python(tmp_path, "echo started; exec sleep 60\n"),
                       AUTOGRADER_TIMEOUT="1", timeout=30)
    assert r["score"] == 0 and "grading took longer than 1 seconds" in r["output"]
    assert "started" in r["output"]


def test_crash_log_tail_becomes_valid_json(autograder, tmp_path):
    (autograder / "submission" / "ResNets.ipynb").write_text("{}")
    nasty = (r"""printf 'line %s\n' $(seq 1 40) >&2; """
             r"""printf 'Traceback: "quoted" back\\slash\ttab\x01\xff\xfe\n'; exit 3""")
    r = run_autograder(autograder, AUTOGRADER_PYTHON=fake_python(tmp_path, nasty + "\n"))
    assert r["score"] == 0 and "exit status 3" in r["output"]
    assert "line 40" in r["output"] and "line 20\n" not in r["output"]  # the tail: its last 20 lines
    assert 'Traceback: "quoted" back\\slash\ttab???' in r["output"]
    (autograder / "results" / "results.json").read_text(encoding="ascii")


# -- which notebook is graded -------------------------------------------------------------------------

REPORT_ARGS = 'out="${@: -1}"; printf \'{"score": 1, "output": "%s"}\' "$4" > "$out/results.json"\n'


@pytest.mark.parametrize("files, graded", [
    (["my-answers.ipynb", "notes.txt"], "my-answers.ipynb"),
    (["ResNets.ipynb", "scratch.ipynb", ".ipynb_checkpoints/ResNets-checkpoint.ipynb"], "ResNets.ipynb"),
    (["work/ResNets (1).ipynb", "old.ipynb"], "work/ResNets (1).ipynb"),
    ([], None),
    (["a.ipynb", "b.ipynb"], None),
])
def test_the_one_notebook_or_the_assignments_is_graded(autograder, tmp_path, files, graded):
    for name in files:
        (autograder / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (autograder / "submission" / name).write_text("{}")
    r = run_autograder(autograder, AUTOGRADER_PYTHON=fake_python(tmp_path, REPORT_ARGS))
    if graded:
        assert r == {"score": 1, "output": str(autograder / "submission" / graded)}
    else:
        assert r["score"] == 0
        assert ("no notebook (.ipynb) was submitted" if not files else "2 notebooks were submitted") in r["output"]


# -- the container image cannot drift from the zip ---------------------------------------------------

def dockerfile_stages():
    """({global ARG: default}, [(base image, stage name, [(instruction, arguments)])]) with continuation
    lines joined and each FROM's base resolved with the ARG defaults (what a plain `docker build .` uses)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    defaults, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, args = line.partition(" ")
        if op.upper() == "FROM":
            words = args.split()
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], words[0])
            stages.append((base, words[2] if len(words) > 2 else None, []))
        elif not stages:
            assert op.upper() == "ARG", f"only ARG may come before the first FROM: {line}"
            name, _, default = args.strip().partition("=")
            defaults[name] = default
        else:
            stages[-1][2].append((op.upper(), args.strip()))
    return defaults, stages


def test_image_and_zip_install_the_same_environment_and_run_the_same_entry_point(zip_path):
    defaults, stages = dockerfile_stages()
    (_, bundle_name, bundle_steps), (base, _, steps) = stages[0], stages[-1]
    runs = " && ".join(a for op, a in bundle_steps + steps if op == "RUN")
    setup = (ROOT / "gradescope" / "setup.sh").read_text()
    entry = (ROOT / "gradescope" / "run_autograder").read_text()

    # Same files: the image's /autograder/source is autograder.zip, built by the same builder.
    assert "gradescope/build.py" in " ".join(a for op, a in bundle_steps if op == "RUN")
    assert ("COPY", f"--from={bundle_name} /bundle/source /autograder/source") in steps
    # Same environment: installed by the zip's setup.sh and by nothing else.
    assert "bash /autograder/source/setup.sh" in runs
    assert not re.search(r"\b(pip|apt-get|apt|venv|conda|requirements)\b", runs.replace("setup.sh", "")), runs
    assert not [a for op, a in steps if op in ("ENV", "ARG")], "settings must live in setup.sh, shared with Gradescope"
    # Same base and Python: setup.sh targets Gradescope's Ubuntu, which is the image's default base;
    # the bases are build arguments only so that `make image` can build where no registry is reachable.
    ubuntu = re.search(r"Base: Ubuntu (\d+\.\d+)", setup).group(1)
    assert base == f"ubuntu:{ubuntu}"
    assert set(defaults) == {"BASE", "BUNDLE_BASE"} and defaults["BASE"] == f"ubuntu:{ubuntu}"
    image_sh = (ROOT / "scripts" / "image.sh").read_text()  # `make image` swaps the bases by these names
    assert all(f'--build-arg "{name}=' in image_sh for name in defaults)
    python = re.search(r"^PYTHON_VERSION=(\d+\.\d+)$", setup, re.M).group(1)
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}", "the lock was frozen on another Python"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={python}" in requires or python in requires
    # Same requirements: setup.sh installs the zip's requirements.lock, byte for byte the repository's.
    assert re.search(r'pip install .*\\\n\s+-r "\$SOURCE/requirements.lock"', setup)
    assert re.search(r'-m venv "\$SOURCE/.venv"', setup)
    assert 'PY="${AUTOGRADER_PYTHON:-$SOURCE/.venv/bin/python}"' in entry
    with zipfile.ZipFile(zip_path) as zf:
        assert sha256(zf.read("requirements.lock")) == sha256((ROOT / "requirements.lock").read_bytes())
        assert zf.read("setup.sh") == setup.encode() and zf.read("run_autograder") == entry.encode()
    # Same entry point: the zip's run_autograder, where Gradescope puts it.
    assert "cp /autograder/source/run_autograder /autograder/run_autograder" in runs
    entrypoints = [a for op, a in steps if op in ("ENTRYPOINT", "CMD")]
    assert [json.loads(a) for a in entrypoints] == [["/autograder/run_autograder"]]


def dockerignored(path, patterns):
    """Docker's .dockerignore rule, for the patterns used here: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    ignored = False
    for negate, regex in patterns:
        if any(regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def test_docker_build_context_holds_what_the_builder_reads(tmp_path):
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate, line = line.startswith("!"), line.lstrip("!")
            regex = re.escape(line).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
            patterns.append((negate, re.compile(regex)))
    needed = [p.relative_to(ROOT).as_posix() for p in build.contents().values()]
    assert [p for p in needed if dockerignored(p, patterns)] == []
    for junk in (".venv/bin/python", ".git/HEAD", "tests/test_gradescope.py", "data/signs/x.h5",
                 "grader/__pycache__/cli.cpython-311.pyc"):
        assert dockerignored(junk, patterns), junk
    # and the builder run on the context alone gives the same zip
    context = tmp_path / "context"
    for top in ROOT.iterdir():
        if dockerignored(top.name, patterns):  # no pattern here re-includes anything inside an ignored folder
            continue
        for p in [top] if top.is_file() else top.rglob("*"):
            rel = p.relative_to(ROOT).as_posix()
            if p.is_file() and not dockerignored(rel, patterns):
                (context / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, context / rel)
    build.build(tmp_path / "from-context.zip", root=context)
    build.build(tmp_path / "from-tree.zip")
    assert (tmp_path / "from-context.zip").read_bytes() == (tmp_path / "from-tree.zip").read_bytes()


# -- hardened by default: the kernel's user cannot read the solution --------------------------------

# Answers run_autograder's check that the kernel's user can run it (-c ...), then reports its arguments.
ARGS_AND_MODES = ('[ "$1" = "-c" ] && exit 0; out="${@: -1}"; mode=$(stat -c %a "$PWD/solution/blocks.py"); '
                  'printf \'{"score": 1, "output": "%s | %s"}\' "$*" "$mode" > "$out/results.json"\n')


@pytest.mark.skipif(os.geteuid() != 0, reason="Gradescope runs run_autograder as root")
def test_as_root_the_kernel_runs_as_nobody_who_cannot_read_the_solution(autograder, short_tmp):
    (autograder / "submission" / "ResNets.ipynb").write_text("{}")
    fake = fake_python(short_tmp, ARGS_AND_MODES)
    r = run_autograder(autograder, AUTOGRADER_PYTHON=fake)
    args, mode = r["output"].split(" | ")
    assert "--run-as nobody" in args and args.endswith(f"--out {autograder / 'results'}")
    assert int(mode, 8) & 0o007 == 0
    source = autograder / "source"
    assert not [p for p in [*(source / "solution").rglob("*"), *(source / "grader" / "expected").rglob("*")]
                if p.stat().st_mode & 0o007]
    r = run_autograder(autograder, AUTOGRADER_PYTHON=fake, AUTOGRADER_KERNEL_USER="")
    assert "--run-as" not in r["output"]
    (short_tmp / "fake-python").write_text("#!/usr/bin/env bash\n[ \"$1\" = -c ] && exit 1\n" + ARGS_AND_MODES)
    r = run_autograder(autograder, AUTOGRADER_PYTHON=fake)  # nobody cannot run this interpreter: as root, said
    assert "--run-as" not in r["output"]


def _nobody_can_run_this_python():
    from grader import sandbox

    return os.geteuid() == 0 and sandbox.can_start(sandbox.Limits(run_as="nobody", isolation="none"))


@pytest.mark.slow
@pytest.mark.skipif(not _nobody_can_run_this_python(), reason="needs root, and a .venv that nobody can read")
def test_without_namespaces_the_kernel_still_cannot_touch_the_solution_or_results(zip_path):
    """Gradescope's containers allow no namespaces: simulated with GRADER_ISOLATION=none. The
    kernel, as nobody, must still fail to read the solution and expected outputs, or to write
    into the grader or the results. The tree is made where nobody can reach it, as /autograder is."""
    import tempfile
    import uuid

    import notebooks
    from hostile import ATTEMPTS, isolation_sources

    token = uuid.uuid4().hex[:12]
    root = Path(tempfile.mkdtemp(prefix="autograder-", dir="/tmp")) / "autograder"
    try:
        root.parent.chmod(0o755)
        unpack(zip_path, root / "source")
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
        (root / "submission").mkdir(parents=True)
        (root / "results").mkdir()
        src = root / "source"
        wanted = {"read-solution", "read-expected", "list-solution", "write-grader", "write-results-folder"}
        values = {"REPO": str(src), "EXPECTED_FILE": str(src / "grader" / "expected" / "identity_block.json"),
                  "TOKEN": token, "OUT_DIR": str(root / "results")}
        sources = {}
        for f, s in isolation_sources([a for a in ATTEMPTS if a.id in wanted]).items():
            for k, v in values.items():
                s = s.replace(k, v)
            sources[f] = s
        notebooks.write(notebooks.solved(**sources), root / "submission" / "ResNets.ipynb")
        r = run_autograder(root, GRADER_ISOLATION="none")
        assert r["extra_data"]["isolation"]["level"] == "none"
        assert "as user nobody" in r["extra_data"]["isolation"]["summary"]
        assert r["score"] == 100, [t["output"] for t in r["tests"] if t["score"] != t["max_score"]]
        assert not list(root.rglob(f"*planted-{token}*"))
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
