"""A method's own training recipe: per-method overrides of the ``training`` section.

A figure grid may train a method with other optimization settings than the config's
``training`` section (``figures.<grid>.training: {method: {key: value}}``), e.g. AFD with
weight decay 1e-4 and batch 128 as Bashivan et al. trained it, or SGR with Adam as Roth et al.
did (docs/methods.md, "Each method's own recipe"). The overrides are part of the model key:

    results/models/{task}/{regularization}/{method}/a{alpha}_t{threshold}_k{pairs}{recipe}/...

where ``{recipe}`` is empty for a model trained with the training section as it is (the path
of every model without overrides stays what it was) and otherwise lists the overridden
values in a fixed order, e.g. ``_adam_lr0.001_bs128_ep13_decay1``. The text holds every
value, so a model's settings are read back from its key alone
(:func:`simreg.train.settings.settings_from_config`).

An override equal to the training section's value is dropped, and so is what the chosen
optimizer does not use (SGD: ``betas``; Adam: ``momentum``): one model, one name.
No torch here: the Snakefile reads it.
"""

from __future__ import annotations

import re

from simreg.paths import number

OPTIMIZERS = ("sgd", "adam")

# key -> its code in the recipe text (in this order); the optimizer is written as its name.
CODES = {
    "optimizer": "",
    "lr": "lr",
    "momentum": "mom",
    "betas": "betas",
    "weight_decay": "wd",
    "batch_size": "bs",
    "epochs": "ep",
    "lr_decay": "decay",
    "lr_step_epochs": "step",
    "lr_cycle_epochs": "cycle",
}
INTEGERS = ("batch_size", "epochs", "lr_step_epochs", "lr_cycle_epochs")
UNUSED = {"sgd": "betas", "adam": "momentum"}  # what each optimizer ignores
BETAS_SEPARATOR = "+"
# one '_code[value]' per overridden key: simreg.paths.WILDCARDS["recipe"] matches the text
_TOKEN = re.compile(r"([a-z]+)([0-9.e+-]*)")


def _typed(name: str, value):
    if name == "optimizer":
        if value not in OPTIMIZERS:
            raise ValueError(f"training recipe: optimizer {value!r} is not one of {OPTIMIZERS}")
        return str(value)
    if name == "betas":
        betas = [float(b) for b in value]
        if len(betas) != 2:
            raise ValueError(f"training recipe: betas takes two numbers, got {value!r}")
        return betas
    return int(value) if name in INTEGERS else float(value)


def canonical(overrides: dict | None, base: dict) -> dict:
    """The overrides that change something: typed, in the order of ``CODES``, without values
    equal to the ``training`` section ``base`` and without what the optimizer ignores."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(CODES))
    if unknown:
        raise ValueError(f"training recipe: unknown keys {unknown}; known: {list(CODES)}")
    typed = {name: _typed(name, overrides[name]) for name in CODES if name in overrides}
    optimizer = typed.get("optimizer", base.get("optimizer", OPTIMIZERS[0]))
    return {
        name: value
        for name, value in typed.items()
        if name != UNUSED[optimizer] and value != _typed(name, base[name])
    }


def token(overrides: dict) -> str:
    """The recipe's text in model paths: '' for no override, else '_code value' per key."""
    parts = []
    for name in CODES:
        if name not in overrides:
            continue
        value = _typed(name, overrides[name])
        if name == "optimizer":
            parts.append(value)
        elif name == "betas":
            parts.append(CODES[name] + BETAS_SEPARATOR.join(number(b) for b in value))
        else:
            parts.append(CODES[name] + number(value))
    return "".join(f"_{part}" for part in parts)


def parse(text: str) -> dict:
    """Inverse of :func:`token`: the overrides a recipe text holds."""
    if not text:
        return {}
    if not text.startswith("_"):
        raise ValueError(f"training recipe {text!r}: expected '' or '_...'")
    names = {code: name for name, code in CODES.items() if code}
    overrides = {}
    for part in text[1:].split("_"):
        match = _TOKEN.fullmatch(part)
        if match is None:
            raise ValueError(f"training recipe {text!r}: cannot read {part!r}")
        code, value = match.groups()
        if code in OPTIMIZERS and not value:
            name, value = "optimizer", code
        elif code in names and value:
            name = names[code]
            if name == "betas":
                value = value.split(BETAS_SEPARATOR)
        else:
            raise ValueError(f"training recipe {text!r}: unknown part {part!r}")
        if name in overrides:
            raise ValueError(f"training recipe {text!r}: {name} given twice")
        overrides[name] = _typed(name, value)
    return overrides


def normalize(text: str) -> str:
    """A recipe text in its one canonical spelling (order of keys, numbers as in paths)."""
    return token(parse(text))


def grid_recipe(grid: dict, method: str, training: dict) -> str:
    """The recipe text of ``method`` in a figure grid (``grid['training'][method]``) under the
    config's ``training`` section; '' where the grid gives the method no override."""
    return token(canonical((grid.get("training") or {}).get(method), training))
