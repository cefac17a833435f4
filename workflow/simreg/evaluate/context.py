"""The preamble every evaluation shares: its model and test images on the device, the test
subset, seeds, and the provenance attached to what it writes.

``simreg evaluate <kind>`` builds one :class:`EvaluationContext` and calls the kind's
``run(context, **params)`` (:mod:`simreg.evaluate.registry`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from simreg.data.store import ImageSet, read_split
from simreg.data.subsets import first_images, random_images
from simreg.models.inference import load_model, pick_device, to_input
from simreg.outputs import model_provenance, provenance, write_csv


@dataclass
class EvaluationContext:
    kind: str
    inputs: dict  # input name -> file
    outputs: dict  # output name -> file
    keys: dict  # the model key's columns, for every output
    device: torch.device
    model: torch.nn.Module | None = None
    meta: dict = field(default_factory=dict)
    test: ImageSet | None = None

    @classmethod
    def open(
        cls, kind: str, inputs: dict, outputs: dict, keys: dict | None = None, device: str = "auto"
    ) -> "EvaluationContext":
        """Load the model (``inputs["model"]``) and the test split (``inputs["dataset"]``),
        where given, onto the chosen device."""
        context = cls(kind, dict(inputs), dict(outputs), dict(keys or {}), pick_device(device))
        if "model" in inputs:
            context.model, context.meta = load_model(inputs["model"], context.device)
        if "dataset" in inputs:
            context.test = read_split(inputs["dataset"], "test")
        return context

    def subset(self, n_images: int | None, seed: int | None = None) -> np.ndarray:
        """Indices of the test images evaluated, the same for every model: the first
        ``n_images`` (``seed`` None) or a sorted random draw seeded by ``seed``; all when
        ``n_images`` is None."""
        n = len(self.test.labels)
        return first_images(n, n_images) if seed is None else random_images(n, n_images, seed)

    def images(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 NHWC images, labels) of ``indices`` on the device."""
        return (
            torch.from_numpy(self.test.images[indices]).to(self.device),
            torch.from_numpy(self.test.labels[indices]).to(self.device),
        )

    def inputs_float(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(float NCHW images in [0, 1], labels) of ``indices`` on the device."""
        x, y = self.images(indices)
        return to_input(x), y

    def provenance(self, **values) -> dict:
        """Provenance of an output: the model's keys (from the rule, else the model's own
        metadata), its model and dataset files, and ``values``."""
        files = {}
        if "dataset" in self.inputs:
            files["dataset_file"] = str(self.inputs["dataset"])
        if "model" in self.inputs:
            files["model_file"] = str(self.inputs["model"])
            return model_provenance(self.meta, **values, **files, **self.keys)
        return provenance(**values, **files, **self.keys)

    def write_table(self, frame, name: str = "csv", **values) -> None:
        """Write a tidy table with the provenance columns appended."""
        write_csv(frame.assign(**self.provenance(**values)), self.outputs[name])


def run_evaluation(
    kind: str,
    inputs: dict,
    outputs: dict,
    params: dict,
    keys: dict | None = None,
    device: str = "auto",
) -> None:
    """Run evaluation ``kind`` (its registry entry's implementation) on ``inputs``."""
    from simreg.evaluate.registry import get_evaluation, runner

    evaluation = get_evaluation(kind)
    missing_out = set(evaluation.outputs) - set(outputs)
    if missing_out:
        raise ValueError(
            f"evaluation {kind!r} writes {sorted(evaluation.outputs)}; "
            f"missing --out for {sorted(missing_out)}"
        )
    implementation = runner(kind)
    context = EvaluationContext.open(kind, inputs, outputs, keys, device)
    implementation(context, **params)


def run_evaluations(
    evaluations: list[dict], keys: dict | None = None, device: str = "auto", log=None
) -> None:
    """Several evaluations of one model in one process, in order (``simreg evaluate-model``,
    rule evaluate_model; :mod:`simreg.evaluate.bundles`): each ``{"kind", "setting",
    "inputs", "outputs", "params"}`` run as ``simreg evaluate <kind>`` runs it, with its
    wall and CPU seconds written to ``log`` (stderr) as it finishes."""
    log = log or sys.stderr
    for i, evaluation in enumerate(evaluations, 1):
        kind, setting = evaluation["kind"], evaluation.get("setting")
        label = f"{i}/{len(evaluations)} {kind}" + (f" ({setting})" if setting else "")
        print(f"simreg evaluate-model: {label} ...", file=log, flush=True)
        wall, cpu = time.perf_counter(), time.process_time()
        run_evaluation(
            kind,
            evaluation["inputs"],
            evaluation["outputs"],
            evaluation["params"],
            keys=keys,
            device=device,
        )
        print(
            f"simreg evaluate-model: {label} done in {time.perf_counter() - wall:.1f} s "
            f"({time.process_time() - cpu:.1f} CPU s)",
            file=log,
            flush=True,
        )
