# Helpers shared by the rules: model keys from wildcards, and grids of models.

from simreg.paths import ModelKey


def model_key(wildcards):
    """The model key of a rule's wildcards; refuses non-canonical paths (no duplicate models)."""
    key = ModelKey(**{f: wildcards[f] for f in ModelKey.__dataclass_fields__})
    canonical = ModelKey.make(**key.as_dict())
    if key != canonical:
        raise ValueError(f"non-canonical model path {key.stem}; use {canonical.stem}")
    return key
