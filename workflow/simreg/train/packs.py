"""Seed packs: one training job trains several seeds of one model key (``training.pack_size``).

A model key's seeds (those the figure grids give it, in the order they first appear) are cut
into consecutive packs of at most ``pack_size``; a seed no grid names (the FGSM source model)
is a pack of its own. ``simreg train-pack`` writes every member of a pack into the pack's
folder; each seed's usual model and metrics files are hard links to them (rule
``train_pack_member``), so everything downstream still reads one model per seed.

A pack's ``stem`` is its model key's without the seed folder, plus ``seeds{seeds}`` (the
members' seeds, e.g. ``seeds0-1-2``); its files are :mod:`simreg.paths`' (``pack_dir``,
``member_files``, ``pack_checkpoint_dir``, ``pack_log``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from simreg.train.model_key import ModelKey

SEPARATOR = "-"  # between the seeds of the {seeds} wildcard


@dataclass(frozen=True)
class Pack:
    members: tuple[ModelKey, ...]  # one key per seed, in training order

    def __post_init__(self):
        if not self.members or len({self.model(m) for m in self.members}) != 1:
            raise ValueError(f"a pack holds seeds of one model key: {self.members}")

    @staticmethod
    def model(key: ModelKey) -> ModelKey:
        """The key without its seed: what the members of a pack share."""
        return dataclasses.replace(key, seed="")

    @classmethod
    def wildcards(cls) -> "Pack":
        """The pack with a Snakemake wildcard in every field: its paths are rule patterns."""
        return cls((dataclasses.replace(ModelKey.wildcards(), seed="{seeds}"),))

    @classmethod
    def from_wildcards(cls, wildcards) -> "Pack":
        fields = {
            name: wildcards.get(name, "") if name == "recipe" else wildcards[name]
            for name in ModelKey.__dataclass_fields__
            if name != "seed"
        }
        return cls(
            tuple(
                ModelKey.from_wildcards({**fields, "seed": seed})
                for seed in wildcards["seeds"].split(SEPARATOR)
            )
        )

    @property
    def seeds(self) -> str:
        return SEPARATOR.join(m.seed for m in self.members)

    @property
    def stem(self) -> str:
        first = self.members[0].stem
        return f"{first.rsplit('/', 1)[0]}/seeds{self.seeds}"


def seed_packs(keys, size: int) -> dict[ModelKey, Pack]:
    """Each of ``keys`` -> its pack: the seeds of one model key, in the order of ``keys``,
    cut into consecutive packs of at most ``size``."""
    seeds: dict[ModelKey, list[ModelKey]] = {}
    for key in dict.fromkeys(keys):
        seeds.setdefault(Pack.model(key), []).append(key)
    packs = {}
    for members in seeds.values():
        for start in range(0, len(members), size):
            pack = Pack(tuple(members[start : start + size]))
            packs.update({member: pack for member in pack.members})
    return packs


def pack_of(key: ModelKey, packs: dict[ModelKey, Pack]) -> Pack:
    """The pack that trains ``key``; a model no grid names is a pack of its own."""
    return packs.get(key) or Pack((key,))
