"""Train the reference ResNet-50 on SIGNS with the recipe of `signs.recipe`.

    python -m solution.train --data data/signs --epochs 20 --seed 0 --out runs/

Prints train, validation and test accuracy after every epoch, keeps the epoch with the best
validation accuracy (a stratified 10% of the training images; the test set never chooses),
and writes to --out: resnet50_seed<S>.keras, curves_seed<S>.png and metrics_seed<S>.json.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np

from signs.loader import SignsDataError, load_signs
from signs.recipe import (
    RECIPE,
    KeepBestOnValidation,
    TrainingBatches,
    accuracy,
    predict_probabilities,
    prepare_for_training,
    split_validation,
)
from solution.resnet50 import ResNet50


class EpochReport(keras.callbacks.Callback):
    """Times each epoch and prints one line of accuracies; the script's only terminal output."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs, self.seconds, self._start = epochs, [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        logs = logs or {}
        print(
            f"epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f}"
            f"  train_acc {logs.get('accuracy', float('nan')):.4f}"
            f"  val_acc {logs.get('val_accuracy', float('nan')):.4f}"
            f"  test_acc {logs.get('test_accuracy', float('nan')):.4f}"
            f"  ({self.seconds[-1]:.1f} s)",
            flush=True,
        )


def parse_recipe(overrides, epochs):
    """The default Recipe with `name=value` overrides (e.g. 'peak_lr=3e-4', 'flip=false')."""
    fields = {field.name: field.type for field in dataclasses.fields(RECIPE)}
    changes = {"epochs": epochs}
    for override in overrides:
        name, _, text = override.partition("=")
        if name not in fields or not text:
            raise ValueError(f"--set expects NAME=VALUE with NAME in {sorted(fields)}, got {override!r}")
        kind = type(getattr(RECIPE, name))
        changes[name] = text.lower() in ("1", "true", "yes") if kind is bool else kind(text)
    return dataclasses.replace(RECIPE, **changes)


def train(data_dir, seed, recipe, out_dir, verbose=1, limit=None):
    """Train one model; returns the metrics dict that is also written as JSON."""
    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test, classes = load_signs(data_dir)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, recipe.validation_fraction, seed)

    model = ResNet50(input_shape=x_train.shape[1:], classes=len(classes))
    batches = TrainingBatches(x_fit, y_fit, seed=seed, recipe=recipe)
    prepare_for_training(model, steps_per_epoch=len(batches), epochs=recipe.epochs, recipe=recipe)
    keep = KeepBestOnValidation(x_val, y_val, watch={"test": (x_test, y_test)}, batch_size=recipe.batch_size)
    report = EpochReport(recipe.epochs)
    # Our own ProgbarLogger, listed before the report, so the bar ends before the report prints.
    progress = [keras.callbacks.ProgbarLogger()] if verbose else []
    history = model.fit(batches, epochs=recipe.epochs, callbacks=[keep, *progress, report], verbose=verbose)

    test_accuracy = accuracy(predict_probabilities(model, x_test, recipe.batch_size), y_test)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / f"resnet50_seed{seed}.keras")
    curves = {name: [float(v) for v in values] for name, values in history.history.items()}
    metrics = {
        "seed": seed,
        "backend": keras.backend.backend(),
        "data": str(data_dir),
        "recipe": dataclasses.asdict(recipe),
        "images": {"fit": len(x_fit), "validation": len(x_val), "test": len(x_test)},
        "param_count": model.count_params(),
        "chosen_epoch": keep.best_epoch + 1,
        "chosen_by": "highest validation accuracy, ties by lower validation cross-entropy",
        "test_accuracy": test_accuracy,
        "validation_accuracy": curves["val_accuracy"][keep.best_epoch],
        "final_epoch_test_accuracy": curves["test_accuracy"][-1],
        "seconds_per_epoch": report.seconds,
        "median_seconds_per_epoch_after_first": float(np.median(report.seconds[1:] or report.seconds)),
        "curves": curves,
    }
    (out_dir / f"metrics_seed{seed}.json").write_text(json.dumps(metrics, indent=2))
    plot_curves(curves, keep.best_epoch, out_dir / f"curves_seed{seed}.png", f"ResNet-50 on SIGNS, seed {seed}")
    return metrics


def plot_curves(curves, chosen_epoch, path, title):
    """Save loss and accuracy per epoch as a PNG, the chosen epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(curves["loss"]) + 1)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, curves["loss"], label="train (smoothed labels, augmented)")
    left.plot(epochs, curves["val_loss"], label="validation")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    for name, label in (("accuracy", "train (augmented)"), ("val_accuracy", "validation"), ("test_accuracy", "test")):
        right.plot(epochs, curves[name], label=label)
    right.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
    for axis in (left, right):
        axis.axvline(chosen_epoch + 1, color="grey", linestyle=":", label="kept (best validation)")
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    """Command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m solution.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/signs", help="folder with train_signs.h5 and test_signs.h5")
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs", help="folder for the model, curves and metrics")
    parser.add_argument(
        "--verbose", type=int, default=1, choices=(0, 1, 2), help="keras fit verbosity (1: progress bar)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a Recipe field")
    parser.add_argument(
        "--limit", type=int, default=None, help="use only the first N train and test images (smoke tests)"
    )
    args = parser.parse_args(argv)
    try:
        recipe = parse_recipe(args.set, args.epochs)
        metrics = train(args.data, args.seed, recipe, args.out, verbose=args.verbose, limit=args.limit)
    except (SignsDataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"kept epoch {metrics['chosen_epoch']} (best validation accuracy {metrics['validation_accuracy']:.4f}):"
        f" test accuracy {metrics['test_accuracy']:.4f}; final epoch's {metrics['final_epoch_test_accuracy']:.4f};"
        f" {metrics['median_seconds_per_epoch_after_first']:.1f} s/epoch; saved in {args.out}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
