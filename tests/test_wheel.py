"""The package installs anywhere: build the wheel, install it into a fresh virtual environment
outside the repository, and grade a notebook there with the `resnet-grader` console script.

The fresh environment gets the wheel (`--no-deps --no-index`), then the distributions its
metadata requires, followed transitively, hard-linked from the project's environment into the
new one's site-packages: what `pip install` would put there, without downloading TensorFlow
again, and nothing more, so an undeclared dependency fails the test. `pip check` is shown
failing before the dependencies are there and passing after. Nothing of the repository is
importable there: no PYTHONPATH, another working directory, and the grader that runs is the
installed one.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# What a clean clone holds that the build must not see (the .gitignore's folders).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "results", "runs", "data", "build", "dist", "__pycache__",
                                    "*.egg-info", ".pytest_cache", ".whl", ".devdata", ".gl", "*.pyc")


def run(cmd, cwd, check=True, **kw):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, check=check, capture_output=True, text=True,
                          timeout=600, **kw)


def install_dependencies(wheel, site):
    """Hard-link into `site` each distribution the wheel requires, transitively, from this environment.

    Returns the names of the distributions linked, and whether all links are hard links (on
    another file system they are symbolic, and the kernel's sandbox does not see their targets).
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    archive = zipfile.ZipFile(wheel)
    meta = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    todo = [(line.split(":", 1)[1].strip(), ("",)) for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    done, hard = set(), True
    while todo:
        text, extras = todo.pop()
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        name = canonicalize_name(req.name)
        if name in done:
            continue
        done.add(name)
        dist = metadata.distribution(req.name)
        todo += [(r, tuple(req.extras) or ("",)) for r in dist.requires or ()]
        for f in dist.files:
            if f.parts[0] == "..":  # console scripts of the dependency: not needed to grade
                continue
            source, target = Path(dist.locate_file(f)), site / f
            if source.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:  # another file system: a copy would be large
                    target.symlink_to(source)
                    hard = False
    return done, hard


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)  # as a fresh clone: nothing built in the tree is reused
    run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "--no-index",
         "-w", tmp / "dist"], cwd=tmp)
    (built,) = (tmp / "dist").glob("resnet_grader-*.whl")
    return built


def test_wheel_holds_the_grader_its_expected_outputs_and_the_solution_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"grader/expected/{p.name}" for p in (ROOT / "grader" / "expected").iterdir() if p.is_file()}
    assert expected and expected <= names
    assert {"grader/visibility.json", "grader/probe.py", "grader/cli.py", "solution/blocks.py"} <= names
    versions = {"grader/versions/__init__.py", "grader/versions/2021/version.json", "grader/versions/course/resnets_utils.py",
                "grader/expected/2021/identity_block.h5", "grader/expected/current/ResNet50.json", "solution/v2021.py"}
    assert versions <= names  # every notebook version: its description, course modules, expected outputs, reference
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"grader", "solution", "signs"}  # no tests, bench, ...
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "resnet-grader = grader.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.fixture
def place(tmp_path):
    """Where to install: not under /tmp, which a bubblewrap kernel sees as an empty tmpfs (a venv there
    could not be isolated as well as the repository's), and not under the repository."""
    base = Path("/var/tmp")
    if not (base.is_dir() and os.access(base, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="resnet-grader-wheel-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_fresh_venv_outside_the_repository_grades_with_the_console_script(wheel, place):
    venv, work = place / "venv", place / "work"
    work.mkdir()
    assert not place.is_relative_to(ROOT)
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv], cwd=place)
    py, script = venv / "bin" / "python", venv / "bin" / "resnet-grader"
    run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], cwd=work)

    missing = run([py, "-m", "pip", "check"], cwd=work, check=False)
    assert missing.returncode != 0 and "tensorflow-cpu" in missing.stdout  # the wheel declares what it needs
    site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work).stdout.strip())
    linked, hard_links = install_dependencies(wheel, site)
    assert {"tensorflow-cpu", "keras", "ipykernel", "nbclient", "psutil"} <= linked
    assert "pytest" not in linked
    assert run([py, "-m", "pip", "check"], cwd=work).returncode == 0

    where = run([py, "-c", "import grader, importlib.util as u; print(grader.__file__); "
                           "print(u.find_spec('solution').origin)"], cwd=work).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where

    helped = run([script, "--help"], cwd=work).stdout
    for example in ("resnet-grader grade submissions/", "resnet-grader class results/", "resnet-grader expected"):
        assert example in helped
    assert "resnet-grader class" in run([script, "class", "--help"], cwd=work).stdout

    shutil.copy(ROOT / "examples" / "example_submission.ipynb", work / "submission.ipynb")
    graded = run([script, "grade", "submission.ipynb", "--out", "out"], cwd=work)
    results = json.loads((work / "out" / "results.json").read_text())
    assert results["score"] == 85, graded.stdout + graded.stderr  # as tests/test_grade_e2e.py grades it in the repo
    lost = {(t["extra_data"]["function"], t["extra_data"]["aspect"]) for t in results["tests"]
            if t["score"] < t["max_score"]}
    assert lost == {("identity_block", "activations"), ("convolutional_block", "names")}
    assert (work / "out" / "report.html").is_file()
    # As isolated as in the repository: the kernel's sandbox sees the installed interpreter and packages.
    if hard_links:
        from grader import sandbox
        level = sandbox.resolve(sandbox.Limits()).isolation
        assert results.get("extra_data", {}).get("isolation", {}).get("level") == level, results.get("extra_data")
