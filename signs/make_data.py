"""Write a synthetic SIGNS data set where the real files are absent.

    python -m signs.make_data data/signs            # writes both files only if both are absent
    python -m signs.make_data data/signs --force    # overwrites whatever is there

The files have the real ones' keys, dtypes and class balance (1080 train, 120 test images), so
everything downstream runs unchanged. They are byte-identical from run to run.
"""

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

from signs.loader import FILES
from signs.synthetic import CLASSES, make_synthetic_signs

TRAIN_PER_CLASS, TEST_PER_CLASS = 180, 20
TRAIN_SEED, TEST_SEED = 1, 2


def write_split(path, split, x, y, classes=CLASSES):
    """Write one SIGNS-layout HDF5 file: `{split}_set_x`, `{split}_set_y`, `list_classes`.

    Timestamps are switched off so that the same arrays always give the same bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", libver="earliest", track_order=False) as f:
        f.create_dataset(f"{split}_set_x", data=np.asarray(x, np.uint8), track_times=False)
        f.create_dataset(f"{split}_set_y", data=np.asarray(y, np.int64), track_times=False)
        f.create_dataset("list_classes", data=np.asarray(classes, np.int64), track_times=False)


def make_data(data_dir, force=False):
    """Create the synthetic files in `data_dir` unless real (or earlier) files are there.

    Returns a one-line description of what was done. Refuses to complete a half-present set
    (one file there, the other not) without `force`: mixing real and synthetic files would
    give meaningless accuracies.
    """
    data_dir = Path(data_dir)
    paths = {split: data_dir / name for split, name in FILES.items()}
    present = [str(p) for p in paths.values() if p.exists()]
    if present and not force:
        if len(present) == len(paths):
            return f"kept the existing {' and '.join(present)} (use --force to overwrite)"
        raise FileExistsError(
            f"only {present[0]} exists; put the other real file beside it, "
            "or pass --force to replace both with synthetic files"
        )
    for split, per_class, seed in (("train", TRAIN_PER_CLASS, TRAIN_SEED), ("test", TEST_PER_CLASS, TEST_SEED)):
        x, y = make_synthetic_signs(per_class, seed)
        write_split(paths[split], split, x, y)
    return f"wrote synthetic {paths['train']} and {paths['test']}"


def main(argv=None):
    """Command line: `python -m signs.make_data DIR [--force]`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m signs.make_data", description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", default="data/signs", help="folder for the .h5 files")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    try:
        print(make_data(args.data_dir, force=args.force))
    except FileExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
