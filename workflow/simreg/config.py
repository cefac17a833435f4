"""Loading and validating the configuration.

The schema is built when it is loaded: every section key and top-level key (type, range,
default, description) from its one declaration in :mod:`simreg.settings`, the structural
definitions and the figure grids from workflow/schemas/config.schema.yaml, the method names
from the regularizer registry and the experiment names from
:mod:`simreg.report.experiments`. Validation fills in defaults, keeps only the figure grids
that ``experiments`` selects, and stops on the first problem with a message that names the
key and says what is allowed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


# Comma-separated plugin modules that every simreg command imports first (set by the Snakefile).
PLUGINS_ENV = "SIMREG_PLUGINS"


class ConfigError(ValueError):
    """The configuration does not satisfy the schema."""


def load_schema() -> dict:
    """The whole schema: the file's definitions and figure grids, every section and top-level
    key declared in simreg.settings, the registered methods and the experiment names."""
    from simreg import settings
    from simreg.report.experiments import selectable
    from simreg.train.regularizers import REGULARIZERS

    try:
        schema = yaml.load(SCHEMA_PATH.read_text(), Loader=_UniqueKeyLoader)
    except DuplicateKeyError as error:
        raise ConfigError(f"schema {SCHEMA_PATH}: {error}") from None
    properties = schema["properties"]
    declared = {
        **settings.top_level_schema(),
        **{name: settings.section_schema(name) for name in settings.SECTIONS},
    }
    twice = sorted(set(declared) & set(properties))
    if twice:
        raise ConfigError(
            f"schema {SCHEMA_PATH}: {twice} are declared in simreg/settings.py; "
            "remove them from the schema file"
        )
    properties.update(declared)
    properties["experiments"]["items"]["enum"] = selectable()
    schema["definitions"]["method"] = {"enum": sorted(REGULARIZERS)}
    return schema


def _with_defaults(validator_class):
    """A validator class that fills in each property's default before validating it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    allowed = ""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = sorted(schema.get("properties", {}))
        if error.validator == "unevaluatedProperties" or not known:
            known = sorted(_known_keys(error))
        allowed = f"; allowed keys here: {', '.join(known)}" if known else ""
    elif "description" in schema:
        allowed = f" ({schema['description']})"
    return f"config key '{key}': {error.message}{allowed}"


def _known_keys(error) -> set[str]:
    """Property names a (possibly $ref-composed) schema declares, for error messages."""
    schema, names = error.schema, set()
    root = load_schema()
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        names |= set(node.get("properties", {}))
        ref = node.get("$ref")
        if ref and ref.startswith("#/"):
            target = root
            for part in ref[2:].split("/"):
                target = target[part]
            stack.append(target)
        stack.extend(node.get("allOf", []))
    return names


def validate_config(config: dict) -> dict:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError.

    Only the figure grids that ``experiments`` selects are kept (simreg.report.experiments):
    that is how a config merged over config.yaml says what it builds. A figure set to null
    (``figures: {minimal_distance: null}``) is left out too. So is a method's entry of a
    grid's ``alpha`` mapping set to null: mappings merge, so a config that drops a method
    from a grid of config.yaml also drops its strengths (``alpha: {jacobian: null}``).
    """
    from simreg.train.regularizers import load_plugins

    plugins = config.get("plugins") or []
    if not isinstance(plugins, list):
        raise ConfigError("config key 'plugins': must be a list of module names")
    try:
        load_plugins(plugins)
    except ImportError as error:
        raise ConfigError(f"config key 'plugins': cannot import {error.name!r} ({error})") from None
    figures = config.get("figures")
    if isinstance(figures, dict):
        for name in [name for name, grid in figures.items() if grid is None]:
            del figures[name]
        for grid in figures.values():
            alpha = grid.get("alpha") if isinstance(grid, dict) else None
            if isinstance(alpha, dict):
                for method in [m for m, strengths in alpha.items() if strengths is None]:
                    del alpha[method]
    validator = DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(describe(e) for e in errors))
    _select_experiments(config)
    shrink_grids(config)
    _regularize_on_imagenet_tree(config)
    _check_consistency(config)
    return config


def _select_experiments(config: dict) -> None:
    """Keep only the figure grids that ``experiments`` selects (simreg.report.experiments)."""
    from simreg.report.experiments import EXPERIMENTS, selected_grids

    missing = sorted(
        name
        for name in config["experiments"]
        if name not in EXPERIMENTS and name != "all" and name not in config["figures"]
    )
    if missing:
        raise ConfigError(
            f"config key 'experiments': {missing} are figures without a grid "
            "under 'figures'; give their grids or select them otherwise"
        )
    grids = selected_grids(config["experiments"])
    if grids is not None:
        for name in [name for name in config["figures"] if name not in grids]:
            del config["figures"][name]


# sweeps of a regularization-section key: shrunk, they keep that key's own value
SECTION_SWEEPS = ("reg_pairs", "n_images")


def _map_regularization(grid: dict, rename) -> None:
    """Rename a grid's regularization set(s) with ``rename``; a list keeps each name once."""
    regularization = grid["regularization"]
    if isinstance(regularization, list):
        grid["regularization"] = list(dict.fromkeys(rename(r) for r in regularization))
    else:
        grid["regularization"] = rename(regularization)


def shrink_grids(config: dict) -> None:
    """Make every figure grid smaller as ``shrink`` says (simreg.settings.Shrink): tasks and
    regularization sets replaced, seeds and sweeps cut to their first values (a ``reg_pairs``
    or ``n_images`` sweep to its first n - 1 and the regularization section's own value, so
    that its last point is the model the other grids train), a single Th replaced. A second
    call changes nothing (a replacement may not itself be replaced)."""
    shrink = config["shrink"]
    for key in ("tasks", "regularization"):
        chained = sorted(set(shrink[key].values()) & set(shrink[key]))
        if chained:
            raise ConfigError(
                f"config key 'shrink.{key}': {chained} are both replaced and "
                "replacements; map each set straight to its final one"
            )
    tasks, sets = shrink["tasks"], shrink["regularization"]
    for grid in config["figures"].values():
        grid["task"] = tasks.get(grid["task"], grid["task"])
        _map_regularization(grid, lambda r: sets.get(r, r))
        if "per_regularization" in grid:
            grid["per_regularization"] = {
                k: v for k, v in grid["per_regularization"].items() if k not in sets
            }
            if not grid["per_regularization"]:
                del grid["per_regularization"]
        if shrink["seeds"] is not None:
            grid["seeds"] = grid["seeds"][: shrink["seeds"]]
        if shrink["threshold"] is not None and len(grid["threshold"]) == 1:
            grid["threshold"] = [shrink["threshold"]]
        if shrink["values"] is not None:
            n = shrink["values"]
            alpha = grid["alpha"]
            grid["alpha"] = (
                {m: a[:n] for m, a in alpha.items()} if isinstance(alpha, dict) else alpha[:n]
            )
            grid["threshold"] = grid["threshold"][:n]
            for key in SECTION_SWEEPS:
                if isinstance(grid.get(key), list):
                    own = config["regularization"][key]
                    grid[key] = list(dict.fromkeys([*grid[key][: n - 1], own]))


IMAGENETTE, IMAGENET = "imagenette_", "imagenet_"


def _regularize_on_imagenet_tree(config: dict) -> None:
    """Where the grids regularize on Imagenette (config.yaml's stand-in for the paper's
    ImageNet images) and ``data.imagenet_dir`` names a full ImageNet tree, regularize on
    that tree instead (``imagenette_gray`` -> ``imagenet_gray``; docs/choices.md)."""
    if not config["data"]["imagenet_dir"]:
        return

    def swap(name: str) -> str:
        return IMAGENET + name[len(IMAGENETTE) :] if name.startswith(IMAGENETTE) else name

    for grid in config["figures"].values():
        _map_regularization(grid, swap)
        if "per_regularization" in grid:
            grid["per_regularization"] = {swap(k): v for k, v in grid["per_regularization"].items()}


def _check_consistency(config: dict) -> None:
    """Rules the schema cannot express."""
    from simreg.paths import as_list, dataset_and_color
    from simreg.report.targets import TARGETS
    from simreg.train.regularizers import REGULARIZERS

    from simreg.data.sources import BUILTIN_DATASETS

    needs_fgsm = {t.grid_name() for t in TARGETS.values() if "fgsm_transfer" in t.reads}
    clash = sorted(set(config["data"]["npz"]) & set(BUILTIN_DATASETS))
    if clash:
        raise ConfigError(
            f"config key 'data.npz': {clash} are built-in dataset names; give "
            f"your NPZ another name (built-in: {', '.join(BUILTIN_DATASETS)})"
        )
    known = set(BUILTIN_DATASETS) | set(config["data"]["npz"])
    source_seed = config["fgsm_transfer"]["source_seed"]
    for name, grid in config["figures"].items():
        dataset, task_color = dataset_and_color(grid["task"])
        for images in [grid["task"], *as_list(grid["regularization"])]:
            if dataset_and_color(images)[0] not in known:
                raise ConfigError(
                    f"config key 'figures.{name}': unknown dataset "
                    f"{dataset_and_color(images)[0]!r}; known: {sorted(known)} "
                    "(your own data: data.npz)"
                )
        if dataset not in config["noise"]["epsilons"]:
            raise ConfigError(
                f"config key 'figures.{name}.task': dataset {dataset!r} has no "
                f"noise grid; add noise.epsilons.{dataset}"
            )
        if source_seed in grid["seeds"]:
            raise ConfigError(
                f"config key 'fgsm_transfer.source_seed': {source_seed} is a seed "
                f"of figures.{name}; the FGSM source model must not be one of the "
                "evaluated models (pick a seed outside every grid)"
            )
        if name in needs_fgsm and dataset not in config["fgsm_transfer"]["epsilons"]:
            raise ConfigError(
                f"config key 'figures.{name}.task': dataset {dataset!r} has no "
                f"FGSM grid; add fgsm_transfer.epsilons.{dataset}"
            )
        for regularization in as_list(grid["regularization"]):
            if task_color != dataset_and_color(regularization)[1]:
                raise ConfigError(
                    f"config key 'figures.{name}': task and regularization set must "
                    "have the same color mode (the network sees both)"
                )
        unknown = sorted(set(as_list(grid["methods"])) - set(REGULARIZERS))
        if unknown:
            raise ConfigError(
                f"config key 'figures.{name}.methods': unknown {unknown}; "
                f"registered: {sorted(REGULARIZERS)}"
            )
        alpha = grid["alpha"]
        if isinstance(alpha, dict):
            lacking = [
                m for m in as_list(grid["methods"]) if REGULARIZERS[m].uses_alpha and m not in alpha
            ]
            if lacking or set(alpha) - set(as_list(grid["methods"])):
                raise ConfigError(
                    f"config key 'figures.{name}.alpha': give strengths for "
                    f"exactly the grid's methods with α; lacking {lacking}, "
                    f"not in methods {sorted(set(alpha) - set(grid['methods']))}"
                )
        recipes = set(grid.get("training") or {}) - set(as_list(grid["methods"])) - {"none"}
        if recipes:
            raise ConfigError(
                f"config key 'figures.{name}.training': {sorted(recipes)} are not "
                f"methods of the grid (methods: {list(grid['methods'])})"
            )
        per_dataset = {
            spec.config
            for m in as_list(grid["methods"])
            for spec in REGULARIZERS[m].parameters.values()
            if spec.per_dataset
        }
        for key in sorted(per_dataset):
            section, field = key.split(".")
            if dataset not in config[section][field]:
                raise ConfigError(
                    f"config key 'figures.{name}.task': dataset {dataset!r} has no "
                    f"value in {key}; add {key}.{dataset}"
                )
        inner = config["regularization"]["inner_threshold"]
        if "double" in grid["methods"] and min(grid["threshold"]) <= inner:
            raise ConfigError(
                f"config key 'figures.{name}.threshold': the double variant needs "
                f"every threshold above regularization.inner_threshold = {inner}"
            )
        if "min_clean_ratio" in grid:
            _check_selection_epsilons(config, name, dataset)
    setting = config["spectrum"]["setting"]
    if setting not in config["boundary"]["settings"]:
        raise ConfigError(
            f"config key 'spectrum.setting': {setting!r} is not a boundary setting; "
            f"choose one of {', '.join(config['boundary']['settings'])}"
        )
    read_by = config["boundary"].get("read_by") or {}
    unknown = sorted(set(read_by) - set(config["boundary"]["settings"]))
    if unknown:
        raise ConfigError(
            f"config key 'boundary.read_by': {unknown} are not boundary settings; "
            f"choose among {', '.join(config['boundary']['settings'])}"
        )
    from simreg.report.targets import TARGETS

    readers = {name for name, target in TARGETS.items() if "boundary" in target.reads}
    unknown = sorted({name for names in read_by.values() for name in names} - readers)
    if unknown:
        raise ConfigError(
            f"config key 'boundary.read_by': {unknown} are no figures or tables "
            "that read the Boundary Attack; choose among "
            f"{', '.join(sorted(readers))}"
        )


def _check_selection_epsilons(config: dict, name: str, dataset: str) -> None:
    """The ε of R_D/U_D of each attack is on that attack's ε grid (selection plane grids)."""
    from simreg.report.selection import FGSM, configured_epsilons

    grids = dict(config["noise"]["epsilons"].get(dataset, {}))
    if dataset in config["fgsm_transfer"]["epsilons"]:
        grids[FGSM] = config["fgsm_transfer"]["epsilons"][dataset]
    for attack, epsilon in configured_epsilons(config, f"{dataset}_x").items():
        grid = grids.get(attack)
        if grid is not None and not any(abs(e - epsilon) <= 1e-6 for e in grid):
            raise ConfigError(
                f"config key 'selection': ε = {epsilon:g} of {attack} for "
                f"figures.{name} is not on the {dataset} grid {grid}; set "
                f"selection.dataset_epsilon.{dataset}.{attack}"
            )


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds the same key twice (plain YAML loaders keep the last silently)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, naming both lines.

    Keys merged in with ``<<: *anchor`` may be overridden (that is what a merge is for);
    only keys written twice in the same mapping are an error.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise DuplicateKeyError(
                            f"key {key!r} is given twice in one mapping, on line {seen[key]} "
                            f"and line {line} (YAML would silently keep the second; remove one)"
                        )
                    seen[key] = line
                except TypeError:  # an unhashable key: the base loader says so
                    continue
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> dict:
    """One config file as a dict; a missing, unreadable, empty or non-mapping file raises a
    ConfigError that names it (and, for a YAML syntax error, the line and column).

    Snakemake reads ``--configfile`` files itself before the Snakefile runs, and its message
    for a broken or empty file names neither; ``simreg check-config`` names both.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path}: cannot be read ({error})") from None
    try:
        config = yaml.load(text, Loader=_UniqueKeyLoader)
    except DuplicateKeyError as error:
        raise ConfigError(f"config file {path}: {error}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"config file {path}{where}: not valid YAML: {error.problem or error.context}"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path}: not valid YAML: {error}") from None
    if config is None:
        raise ConfigError(
            f"config file {path}: is empty (a config file holds keys at top "
            "level, e.g. 'training: {epochs: 10}')"
        )
    if not isinstance(config, dict):
        raise ConfigError(
            f"config file {path}: must hold keys at top level, but holds a {type(config).__name__}"
        )
    return config


def load_config(*paths: str | Path, overrides: dict | None = None) -> dict:
    """Merge YAML files (later ones override earlier ones, dicts recursively, as Snakemake
    merges ``--configfile`` over the defaults) and validate; every problem names its file or
    key."""
    config: dict = {}
    for path in paths:
        _merge(config, read_config_file(path))
    _merge(config, overrides or {})
    return validate_config(config)


def _merge(base: dict, update: dict) -> None:
    """Snakemake's merge rule: nested dicts merge, everything else is replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
