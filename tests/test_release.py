"""`make release`: the students' bundle holds the notebook, the public checks, their expected outputs and the
data loader; never solution/. Its checks run from outside the repository, passing a solved notebook and
failing a mistaken one."""

import json
import os
import subprocess
import sys

import nbformat
import pytest

import corpus
import notebooks
from grader import release

PUBLIC = {"__init__", "selfcheck", "expected", "probe", "checks", "diagnosis", "matching", "agreement",
          "measurement", "results", "spec", "errors", "places", "versions/__init__",
          "versions/course/resnets_utils", "versions/course/test_utils", "versions/course/public_tests"}
MISTAKE = {v.id: v for v in corpus.MISTAKES}

# Runs the bundle's notebook as a student would, top to bottom, up to the data cells.
RUNNER = r'''
import json, sys
# A student's Python has no grader installed: leave out this checkout's editable install (its import hook,
# which Python asks before sys.path, and any path entry of it), as a fresh environment would not have it.
sys.meta_path = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", type(f).__module__)]
sys.path = [p for p in sys.path if "__editable__" not in p]
import nbformat
nb = nbformat.read(sys.argv[2], as_version=4)
skip = set(json.loads(sys.argv[1]))
ns = {}
for cell in nb.cells:
    src = cell.source.strip()
    if cell.cell_type != "code" or any(src.startswith(s) for s in skip):
        continue
    if "load_signs(" in src:
        break
    if src.startswith("check_"):
        print("RESULT", src, eval(src, ns), flush=True)
    else:
        exec(compile(src, "cell", "exec"), ns)
import grader
print("GRADER", grader.__file__)
try:
    import solution
    print("SOLUTION IMPORTABLE", solution.__file__)
except ImportError:
    print("SOLUTION NOT IMPORTABLE")
'''


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return release.build(tmp_path_factory.mktemp("dist"))


def _files(bundle):
    return sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())


def test_bundle_ships_the_notebook_public_checks_expected_outputs_and_loader(bundle):
    files = _files(bundle)
    assert "ResNets.ipynb" in files and "README.md" in files
    assert {f[len("grader/"):-3] for f in files if f.startswith("grader/") and f.endswith(".py")} == PUBLIC
    for function in ("identity_block", "convolutional_block", "ResNet50"):
        assert f"grader/expected/{function}.json" in files and f"grader/expected/{function}.h5" in files
    assert "signs/loader.py" in files and "signs/__init__.py" in files
    assert (bundle.parent / "ResNets.zip").is_file()


def test_solution_is_not_in_the_bundle(bundle):
    files = _files(bundle)
    assert not any("solution" in part for f in files for part in f.split("/"))
    for f in files:
        if f.endswith(".py"):
            text = (bundle / f).read_text()
            assert "layers.Conv2D(" not in text and "from solution" not in text, f
    nb = nbformat.read(bundle / "ResNets.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    for function in ("identity_block", "convolutional_block", "ResNet50"):
        stub = notebooks.graded_cell(nb, function).source
        assert "layers.Conv2D(" not in stub and "= None" in stub


def test_a_public_module_that_imports_solution_stops_the_build(tmp_path):
    (tmp_path / "grader").mkdir()
    (tmp_path / "grader" / "selfcheck.py").write_text("from grader import spec\n")
    (tmp_path / "grader" / "spec.py").write_text("import solution\n")
    with pytest.raises(release.ReleaseError, match="spec.py imports solution"):
        release.public_modules(tmp_path)


def _run(bundle, tmp_path, sources, skip=(), notebook="ResNets.ipynb"):
    """Fill the bundle's notebook with `sources`, then run its cells from a copy outside the repository."""
    work = tmp_path / "student"
    subprocess.run(["cp", "-r", str(bundle), str(work)], check=True)
    nb = notebooks.filled(sources, nbformat.read(work / notebook, as_version=4))
    notebooks.write(nb, work / notebook)
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(tmp_path / "runner.py"), json.dumps(list(skip)), notebook], cwd=work,
                          env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"GRADER {work / 'grader' / '__init__.py'}" in done.stdout
    assert "SOLUTION NOT IMPORTABLE" in done.stdout
    return done.stdout


@pytest.mark.slow
def test_bundle_checks_pass_a_solved_notebook_outside_the_repository(bundle, tmp_path):
    out = _run(bundle, tmp_path, notebooks.solution_sources())
    for function in ("identity_block", "convolutional_block", "ResNet50"):
        assert f"RESULT check_{function}({function}) True" in out
    assert "FAIL" not in out


@pytest.mark.slow
def test_bundle_checks_fail_a_mistaken_notebook_with_the_graders_messages(bundle, tmp_path, expected_outputs):
    from test_corpus import grade_variant

    mistake = MISTAKE["identity-missing-final-relu"]
    sources = {**notebooks.solution_sources(), "identity_block": mistake.source()}
    out = _run(bundle, tmp_path, sources, skip=("check_ResNet50(ResNet50)", "model = ResNet50"))
    assert "RESULT check_identity_block(identity_block) False" in out
    assert "RESULT check_convolutional_block(convolutional_block) True" in out
    assert "FAIL  identity_block / activations: 0 of 10 points" in out
    for check in grade_variant(mistake, expected_outputs):  # the grader's own messages, word for word
        for message in check.messages:
            assert message in out


@pytest.mark.slow
def test_the_2021_bundle_checks_its_own_notebook_with_the_course_imports(tmp_path_factory, tmp_path):
    """The 2021 notebook's bundle: its import cell finds resnets_utils, test_utils and public_tests beside
    it, and its checks judge the 2021 signatures (a block ignoring `training` fails its activations)."""
    from grader import versions

    bundle = release.build(tmp_path_factory.mktemp("dist2021"), version=versions.get("2021"))
    assert bundle.name == "Residual_Networks-2021"
    assert {"resnets_utils.py", "test_utils.py", "public_tests.py", "Residual_Networks.ipynb"} <= set(_files(bundle))
    reference = (notebooks.ROOT / "solution" / "v2021.py").read_text().split('"""', 2)[2]
    ignored = reference.replace("(X, training=training)", "(X)", 1)
    sources = {"identity_block": ignored, "convolutional_block": "pass", "ResNet50": "pass"}
    out = _run(bundle, tmp_path, sources, skip=("check_ResNet50(ResNet50)", "model = ResNet50"),
               notebook="Residual_Networks.ipynb")
    assert "RESULT check_identity_block(identity_block) False" in out
    assert "FAIL  identity_block / activations: 0 of 12 points" in out
    assert "PASS  identity_block / shapes: 10 of 10 points" in out and "/ names" not in out
    assert "hint: main path BatchNormalization 1 does not follow the block's training argument" in out
