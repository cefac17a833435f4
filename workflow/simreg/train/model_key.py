"""Which model: the key that names every trained model, and its canonical form.

A model is identified by (task, regularization set, method, alpha, threshold, pairs k,
seed, training recipe). The pairs field also names the similarity methods' pair pass where
it is not the default: ``16`` (two batches of k, the authors' code) or ``16-fused`` (one batch
of 2k; ``regularization.pair_pass``), so that models trained before the setting existed keep
their paths. What a method does not use is canonicalized by its regularizer's declarations
(``none`` has no regularization set and alpha 0; methods without a threshold get ``na``), so
one model is never trained twice under two names. The recipe is '' for a model trained with
the config's ``training`` section, else the grid's overrides for the method
(:mod:`simreg.train.recipe`, e.g. ``_adam_lr0.001``), appended to the parameter folder of the
key's ``stem``, ``{task}/{regularization}/{method}/a{alpha}_t{threshold}_k{pairs}{recipe}/
seed{seed}``; the files under results/ named by it are :mod:`simreg.paths`' (``model_file``,
``metrics_file``, ``checkpoint_dir``, ``log_file``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from simreg.paths import (
    NO_REGULARIZATION,
    NOT_APPLICABLE,
    PAIR_PASSES,
    SIMILARITY_TARGETS,
    join_pairs,
    number,
    split_pairs,
)
from simreg.train.recipe import normalize
from simreg.train.regularizers import get_regularizer

__all__ = ["PAIR_PASSES", "ModelKey", "baseline_key", "join_pairs", "split_pairs"]


@dataclass(frozen=True)
class ModelKey:
    task: str
    regularization: str
    method: str
    alpha: str
    threshold: str
    pairs: str
    seed: str
    recipe: str = ""  # '' = the training section as it is (simreg.train.recipe)

    @classmethod
    def make(
        cls, task, regularization, method, alpha, threshold, pairs, seed, recipe: str = ""
    ) -> "ModelKey":
        """Canonical key: drops what ``method`` does not use (its regularizer says what)."""
        r = get_regularizer(method)
        if not set(r.needs) & set(SIMILARITY_TARGETS):  # no target file of a regularization set
            regularization = NO_REGULARIZATION
        if not r.uses_alpha:
            alpha = 0
        k, pair_pass = split_pairs(pairs)
        if "reg_pairs" not in r.parameters:
            k = 0
        if "pair_pass" not in r.parameters or not k:
            pair_pass = PAIR_PASSES[0]
        uses_threshold = "threshold" in r.parameters and threshold != NOT_APPLICABLE
        threshold = number(threshold) if uses_threshold else NOT_APPLICABLE
        return cls(
            task,
            regularization,
            method,
            number(alpha),
            threshold,
            join_pairs(k, pair_pass),
            str(int(seed)),
            normalize(recipe),
        )

    @classmethod
    def wildcards(cls) -> "ModelKey":
        """The key with a Snakemake wildcard in every field: its paths are rule patterns."""
        return cls(**{name: f"{{{name}}}" for name in cls.__dataclass_fields__})

    @classmethod
    def from_wildcards(cls, wildcards) -> "ModelKey":
        """The key of a rule's wildcards; refuses non-canonical paths (no duplicate models).
        Wildcards without ``recipe`` name a model without one."""
        key = cls(
            **{
                name: wildcards[name] if name != "recipe" else wildcards.get(name, "")
                for name in cls.__dataclass_fields__
            }
        )
        canonical = cls.make(**key.as_dict())
        if key != canonical:
            raise ValueError(f"non-canonical model path {key.stem}; use {canonical.stem}")
        return key

    @property
    def stem(self) -> str:
        return (
            f"{self.task}/{self.regularization}/{self.method}/"
            f"a{self.alpha}_t{self.threshold}_k{self.pairs}{self.recipe}/seed{self.seed}"
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def columns(self) -> dict:
        """The key as CSV columns of every per-model output ('na' marks unused values); a
        pair pass other than the default adds a ``pair_pass`` column, and a recipe a ``recipe``
        column (so that the columns, and the rules' params made of them, of every model
        without either stay what they were)."""
        d = self.as_dict()
        k, pair_pass = split_pairs(d.pop("pairs"))
        d["reg_pairs"] = str(k)
        if pair_pass != PAIR_PASSES[0]:
            d["pair_pass"] = pair_pass
        if not d["recipe"]:
            del d["recipe"]
        return d


def baseline_key(task: str, seed) -> ModelKey:
    """The unregularized model (method none) of ``task`` and ``seed``."""
    return ModelKey.make(task, NO_REGULARIZATION, NO_REGULARIZATION, 0, NOT_APPLICABLE, 0, seed)
