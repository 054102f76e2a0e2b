"""Assemble autograder.zip: what Gradescope unpacks into /autograder/source (and the Dockerfile copies).

    python gradescope/build.py [--out build/autograder.zip] [--root .]

Contents, and nothing else: setup.sh and run_autograder at the root (as Gradescope requires),
prairielearn/run.sh (PrairieLearn's entrypoint: the image made from the zip serves both),
requirements.lock, the grader package with its expected outputs, and the reference solution's
package (the grader hands solution/blocks.py to the kernel when it grades ResNet50). No tests,
no venv, no data, no training code. Standard library only, so that it runs anywhere (the
Dockerfile's first stage included). The zip is reproducible: same files in, same bytes out.
"""

import argparse
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"setup.sh": "gradescope/setup.sh", "run_autograder": "gradescope/run_autograder",
           "prairielearn/run.sh": "prairielearn/run.sh"}
# The original's reference, and each notebook version's (the file its version.json names): the grader hands
# a version's blocks to the kernel when it grades that version's ResNet50.
FILES = ["requirements.lock", "solution/__init__.py", "solution/blocks.py", "solution/resnet50.py"]
FILES += sorted({json.loads(p.read_text())["reference"]["blocks"] for p in (ROOT / "grader" / "versions").glob("*/version.json")}
                - set(FILES))
PACKAGES = ["grader"]  # every file in it (data files the grader reads included), less caches and dotfiles
REQUIRED = ["grader/expected/*.json", "grader/expected/*.h5", "grader/expected/*/*.h5"]  # made by `make expected`
EXECUTABLE = set(SCRIPTS)
EPOCH = (1980, 1, 1, 0, 0, 0)


def contents(root=ROOT):
    """{name in the zip: file in the tree}, in name order."""
    root = Path(root)
    out = {name: root / rel for name, rel in SCRIPTS.items()}
    out.update({rel: root / rel for rel in FILES})
    for package in PACKAGES:
        for path in (root / package).rglob("*"):
            rel = path.relative_to(root)
            if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts) \
                    and path.suffix not in (".pyc", ".pyo"):
                out[rel.as_posix()] = path
    for pattern in REQUIRED:
        if not list(root.glob(pattern)):  # e.g. grader/expected/ not generated, or left out of a Docker build context
            raise FileNotFoundError(f"no {pattern} in {root}")
    missing = [str(p) for p in out.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not in the tree: {', '.join(missing)}")
    return dict(sorted(out.items()))


def build(out, root=ROOT):
    """Write the zip to `out`; return its member names."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    files = contents(root)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in files.items():
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((0o100755 if name in EXECUTABLE else 0o100644) << 16)
            info.create_system = 3  # unix, so that unzip restores the modes
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)
    return list(files)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python gradescope/build.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "build" / "autograder.zip")
    p.add_argument("--root", type=Path, default=ROOT, help="the project tree to take the files from")
    args = p.parse_args(argv)
    names = build(args.out, args.root)
    print(f"wrote {args.out} ({len(names)} files, {args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
