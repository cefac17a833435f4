"""Accuracy on common corruptions (paper §5.4-5.5, Figs. 6, 7 left, 24): every corruption of
the task's corrupted test set (:mod:`simreg.data.corrupted`) at every severity.

The tidy table has one row per (corruption, severity), plus the clean accuracy on the same
images as corruption ``none``, severity 0; ``frequency_group`` is the corruption's group of
App. 7.10 (low, medium, high). Means over corruptions and groups are left to the figures.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import torch

from simreg.data.corrupted import CorruptedSet, read_corruptions
from simreg.data.corruptions import GROUP_OF, SEVERITIES
from simreg.evaluate.registry import implements
from simreg.models.inference import loss_and_accuracy

CLEAN = "none"


def corruption_accuracy(
    model,
    corrupted: CorruptedSet,
    indices: np.ndarray,
    device,
    severities=SEVERITIES,
    batch_size: int = 1000,
    transform=None,
) -> pd.DataFrame:
    """Accuracy of ``model`` on images ``indices`` of ``corrupted``, clean and under each
    corruption at each of ``severities``. ``transform`` maps the float [0, 1] batch before
    the model (None: as it is)."""
    labels = torch.from_numpy(corrupted.labels[indices]).to(device)

    def accuracy(images_u8: np.ndarray) -> float:
        x = torch.from_numpy(np.ascontiguousarray(images_u8)).to(device)
        return loss_and_accuracy(model, x, labels, batch_size, transform=transform)[1]

    rows = [
        {
            "corruption": CLEAN,
            "severity": 0,
            "frequency_group": CLEAN,
            "accuracy": accuracy(corrupted.clean[indices]),
        }
    ]
    for corruption in corrupted.corruptions():
        images = corrupted.images(corruption)
        for severity in severities:
            rows.append(
                {
                    "corruption": corruption,
                    "severity": int(severity),
                    "frequency_group": GROUP_OF[corruption],
                    "accuracy": accuracy(images[severity - 1][indices]),
                }
            )
        print(
            f"{corruption}: " + " ".join(f"{r['accuracy']:.3f}" for r in rows[-len(severities) :]),
            file=sys.stderr,
            flush=True,
        )
    return pd.DataFrame(rows)


def check_same_split(
    corrupted: CorruptedSet, test_images: np.ndarray, test_labels: np.ndarray, path
) -> None:
    """The corrupted set's clean images are the first images of the task's test split."""
    n = len(corrupted.labels)
    if (
        len(test_labels) < n
        or not np.array_equal(corrupted.labels, test_labels[:n])
        or not np.array_equal(corrupted.clean, test_images[:n])
    ):
        raise ValueError(
            f"{path}: its clean images are not the task's test split; rebuild it "
            "(rule corruptions) from the same dataset file"
        )


@implements("corruption_accuracy")
def run(context, *, n_images: int | None = None, batch_size: int = 1000) -> None:
    """Tidy CSV: model keys, corruption, severity, frequency_group, accuracy, on the first
    ``n_images`` images of the corrupted set (all when None)."""
    path = context.inputs["corruptions"]
    corrupted = read_corruptions(path)
    check_same_split(corrupted, context.test.images, context.test.labels, path)
    n = len(corrupted.labels) if not n_images else min(n_images, len(corrupted.labels))
    table = corruption_accuracy(
        context.model, corrupted, np.arange(n), context.device, batch_size=batch_size
    )
    context.write_table(
        table,
        n_images=n,
        corruptions_file=str(path),
        corruptions_origin=corrupted.attrs.get("origin", "unknown"),
    )
