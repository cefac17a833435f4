"""Train a pack of seeds of one model key in one process (``simreg train-pack``).

STUB: trains the seeds one after another with :func:`simreg.train.trainer.train`, each with
its own checkpoints in ``checkpoint_dir/seed{seed}``; to be replaced by the packed trainer
(same signature).
"""

from __future__ import annotations

from pathlib import Path

from simreg.train.settings import TrainSettings


def train_pack(task_path, inputs: dict, model_outs: list, metrics_outs: list, checkpoint_dir,
               settings_list: list[TrainSettings], device: str = "auto",
               threads: int | None = None, extra_provenance_list: list | None = None) -> None:
    """Train one model per entry of ``settings_list`` (identical but for ``seed``).

    ``inputs`` maps each file the method needs to one path (shared by every seed) or to a
    list of one path per seed (e.g. ``source_model``), in the order of ``settings_list``.
    """
    from simreg.train.trainer import train

    extras = extra_provenance_list or [None] * len(settings_list)
    for i, settings in enumerate(settings_list):
        own = {name: path[i] if isinstance(path, (list, tuple)) else path
               for name, path in inputs.items()}
        train(task_path, own, model_outs[i], metrics_outs[i],
              Path(checkpoint_dir) / f"seed{settings.seed}", settings, device=device,
              threads=threads, extra_provenance=extras[i])
