"""`make release`: build what ships to students, and nothing else.

There is one bundle per notebook version (grader/versions), each a folder and a zip of it:

    ResNets/                       (the original version; Residual_Networks-<id>/ for the others)
      ResNets.ipynb        the assignment, outputs cleared
      grader/              the public checks: grader.selfcheck and the modules it imports
      grader/expected/     the expected outputs those checks compare with (every version's)
      grader/versions/     the versions' descriptions
      signs/               the data loader and training recipe the notebook imports
      resnets_utils.py ... the course modules the version's notebook imports, beside it
      README.md

The public modules are found by following grader.selfcheck's imports, so a new import
is shipped without editing a list here, and a public module that imports `solution`
(or any module outside the bundle) stops the build instead of shipping a broken
or leaking bundle. The notebook finds `grader/` and `signs/` beside itself, so its
import line is the same in the repository and in the bundle.
"""

import argparse
import ast
import shutil
import sys
from pathlib import Path

import nbformat

from grader import versions

ROOT = Path(__file__).resolve().parent.parent
NAME = "ResNets"
ENTRY = "grader.selfcheck"
EXPECTED_SUFFIXES = (".json", ".h5")
SIGNS_FILES = ("__init__.py", "loader.py", "recipe.py")  # what the notebook imports from signs/
FORBIDDEN = ("solution",)

README = """# ResNet-50 assignment

Open `ResNets.ipynb` in Jupyter from this folder. Each graded function has a check cell below
it: it runs the grader's own checks on your function and prints what the grader would say.

Put the SIGNS data files `train_signs.h5` and `test_signs.h5` in `data/signs/` inside this
folder before running the data and training cells.

Needs Python 3.11 with keras 3, tensorflow, numpy and h5py.
"""


class ReleaseError(Exception):
    """The bundle cannot be built as it must be: says what is wrong."""


def _imports(path, top_level_only):
    """Module names a file imports (all of them, or only those at module level)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def public_modules(root=ROOT, entry=ENTRY):
    """grader's modules reachable from the entry module, as file paths; refuses a forbidden import."""
    seen, todo = {}, [entry]
    while todo:
        module = todo.pop()
        path = root / Path(*module.split(".")).with_suffix(".py")
        if not path.is_file():  # a package
            path = root / Path(*module.split(".")) / "__init__.py"
        if module in seen or not path.is_file():
            continue
        seen[module] = path
        for name in _imports(path, top_level_only=True):
            if name.split(".")[0] in FORBIDDEN:
                raise ReleaseError(f"{path.relative_to(root)} imports {name}: the students' bundle must not need it")
        todo += [n for n in _imports(path, top_level_only=False) if n.split(".")[0] == "grader"]
    return sorted(seen.values())


def plan(root=ROOT):
    """(source, path in the bundle) for every file to ship; the notebook is written separately."""
    files = [(root / "grader" / "__init__.py", Path("grader/__init__.py"))]
    files += [(p, p.relative_to(root)) for p in public_modules(root) if p != root / "grader" / "__init__.py"]
    expected = sorted(p for p in (root / "grader" / "expected").rglob("*") if p.suffix in EXPECTED_SUFFIXES)
    if not expected:
        raise ReleaseError("grader/expected/ is empty: run `make expected` first")
    files += [(p, p.relative_to(root)) for p in expected]
    data = sorted((root / "grader" / "versions").glob("*/version.json"))
    data += sorted((root / "grader" / "versions" / "course").glob("*.py"))
    files += [(p, p.relative_to(root)) for p in data]
    files += [(root / "signs" / f, Path("signs") / f) for f in SIGNS_FILES if (root / "signs" / f).is_file()]
    return files


def student_notebook(path):
    """The assignment as students get it: outputs and execution counts cleared."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def bundle_name(version):
    """ResNets for the original version (as ever), Residual_Networks-<id> for the others."""
    return NAME if version.id == versions.DEFAULT else f"{Path(version.notebook).stem}-{version.id}"


def build(out, root=ROOT, version=None):
    """Write one version's bundle folder out/<name> and out/<name>.zip; return the folder."""
    version = version or versions.get()
    out, name = Path(out), bundle_name(version)
    bundle = out / name
    if bundle.exists():
        shutil.rmtree(bundle)
    for source, dest in plan(root):
        target = bundle / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for module, path in version.course_modules.items():
        shutil.copyfile(root / "grader" / "versions" / path, bundle / f"{module}.py")
    notebook = Path(version.notebook).name
    nbformat.write(student_notebook(root / version.notebook), str(bundle / notebook))
    (bundle / "README.md").write_text(README.replace("ResNets.ipynb", notebook))
    shutil.make_archive(str(out / name), "zip", root_dir=out, base_dir=name)
    return bundle


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m grader.release", description="Build the students' bundle.")
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist)")
    args = p.parse_args(argv)
    for version in map(versions.get, versions.ids()):
        try:
            bundle = build(args.out, version=version)
        except ReleaseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        shipped = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
        print("\n".join(shipped))
        missing = [f for f in SIGNS_FILES if not (bundle / "signs" / f).is_file()]
        if missing:
            print(f"warning: signs/{', signs/'.join(missing)} not found: the bundle's data cells will fail",
                  file=sys.stderr)
        print(f"{version.id} version: bundle {bundle}  zip: {bundle.with_suffix('.zip')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
