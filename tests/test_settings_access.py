"""Code reads the config through its typed settings (simreg.settings.typed, SETTINGS in the
Snakefile), not by raw dict lookups: only the loader (simreg/config.py) and the declarations
(simreg/settings.py, which build the typed objects) index the config dict."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Where a raw lookup is allowed: the code that builds the typed settings from the dict.
ALLOWED = {"workflow/simreg/config.py", "workflow/simreg/settings.py"}

RAW = re.compile(r"\bconfig\s*(\[|\.get\(|\.setdefault\(|\.items\(|\.keys\(|\.values\()")


def raw_lookups(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if RAW.search(line) and not line.lstrip().startswith("#")
    ]


def scanned() -> list[Path]:
    files = [
        ROOT / "Snakefile",
        *sorted((ROOT / "workflow/rules").glob("*.smk")),
        *sorted((ROOT / "workflow/simreg").rglob("*.py")),
    ]
    return [f for f in files if f.relative_to(ROOT).as_posix() not in ALLOWED]


@pytest.mark.parametrize(
    "text, found",
    [
        ('n = config["noise"]["seed"]', True),
        ("n = config.get('noise', {})", True),
        ("for k in config.items():", True),
        ("n = typed(config).noise.seed", False),
        ("n = SETTINGS.noise.seed", False),
        ('# config["noise"] in a comment', False),
    ],
)
def test_the_check_finds_raw_lookups(text, found):
    assert bool(raw_lookups(text)) is found


def test_no_raw_config_lookups_outside_the_loader():
    files = scanned()
    assert len(files) > 50
    found = {
        f.relative_to(ROOT).as_posix(): hits for f in files if (hits := raw_lookups(f.read_text()))
    }
    assert not found, (
        "read the config through simreg.settings.typed(config) (SETTINGS in the "
        f"rules), not by dict lookups: {found}"
    )


def test_typed_settings_are_the_validated_values():
    from simreg.config import load_config
    from simreg.settings import Noise, Shrink, typed

    config = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    settings = typed(config)
    assert isinstance(settings.noise, Noise) and settings.noise.n_images == 360
    assert settings.noise.epsilons == config["noise"]["epsilons"]
    assert isinstance(settings.shrink, Shrink) and settings.shrink.seeds == 1
    assert settings.figures is config["figures"]
    assert settings.plugins == []
    assert list(settings.params("whitebox")) == list(config["whitebox"])  # the config's order
    assert typed(settings) is settings
    with pytest.raises(AttributeError):
        _ = settings.no_such_section
