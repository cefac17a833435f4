"""Which code made an output: a hash of the package source (recorded in every output's
provenance) and, per command, a hash of the modules it runs (a rule's ``code`` param).

Snakemake reruns a job whose params changed. Each rule passes ``code_hash(<its command>,
...)`` as a param, so editing a module reruns exactly the jobs whose command imports it (and,
through their updated outputs, what depends on them); nothing else. The module set is found
statically, by reading the package's files with :mod:`ast` (nothing is imported, so the
Snakefile stays cheap and torch-free), and the hash is of the files' contents and module
names (not of paths or times), so it is the same on every machine and checkout.

An entry is ``"module"`` or ``"module:function"``. A module's closure is every module it
imports anywhere in its file (function-level imports included), the packages above it, and,
for a package that imports its folder's modules by name (``pkgutil.iter_modules``, the
regularizers), all of them. A ``module:function`` entry narrows the start: the module's
top-level imports and the function's own.

Registries hold the implementing callables themselves, filled by a decorator on each
(``@implements("noise")`` on an evaluation's function, ``@drawing`` on a figure's or table's).
A rule cannot import them (the Snakefile stays torch-free), so :meth:`ImportGraph.decorated`
finds each registration statically, from the decorator in the source: name ->
``"module:function"``, which a rule adds as a further entry. A command looks its callable up
the same way (:func:`load_registered`: import the module the scan names, whose decorator
fills the registry), so the code hashed is the code run.

Two kinds of module are left out of the per-command hash, on purpose:

- ``simreg.cli``, the dispatcher: only the source of the command's own function counts, so
  that a new option of one command does not rerun every job; an edit of the parser or of
  ``main`` is not seen (rerun with ``--forcerun``).
- ``CONFIG_ONLY``: the typed defaults and the validation, whose values reach a job only
  through the config, whose values the rules pass as params already.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
from functools import cache
from pathlib import Path

PACKAGE = "simreg"
PACKAGE_DIR = Path(__file__).resolve().parent
DISPATCHERS = frozenset({"simreg.cli"})
CONFIG_ONLY = frozenset({"simreg.settings", "simreg.config"})


def _read(path: Path) -> bytes:
    """A file's bytes with line endings normalized (a Windows checkout hashes the same)."""
    return path.read_bytes().replace(b"\r\n", b"\n")


def package_modules(root: Path = PACKAGE_DIR, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def source_hash(root: Path | None = None) -> str:
    """SHA-256 (first 16 hex digits) of every .py file of the package (``root``; default:
    this one, hashed once per process), by relative path: what provenance records beside
    the version, which changes with any edit."""
    return _source_hash(PACKAGE_DIR) if root is None else _source_hash.__wrapped__(Path(root))


@cache
def _source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + _read(path) + b"\0")
    return digest.hexdigest()[:16]


class ImportGraph:
    """The package's static import graph (parsed once per root)."""

    def __init__(self, root: Path = PACKAGE_DIR, package: str = PACKAGE):
        self.root, self.package = Path(root), package
        self.modules = package_modules(self.root, package)
        self._trees: dict[str, ast.Module] = {}
        self._closures: dict[str, frozenset] = {}
        self._children: dict[str, frozenset] = {}
        self._sources: dict[str, bytes] = {}
        self._indexes: dict[str, dict] = {}
        self._definitions: dict[str, dict] = {}

    def tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            self._trees[module] = ast.parse(self.source(module))
        return self._trees[module]

    def source(self, module: str) -> bytes:
        if module not in self._sources:
            self._sources[module] = _read(self.modules[module])
        return self._sources[module]

    def is_package(self, module: str) -> bool:
        return self.modules[module].name == "__init__.py"

    def _absolute(self, node: ast.ImportFrom, module: str) -> str | None:
        if not node.level:
            return node.module
        base = module.split(".")
        base = base if self.is_package(module) else base[:-1]
        base = base[: len(base) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))

    def definitions(self, module: str) -> dict[str, ast.AST]:
        """The module's top-level functions and classes by name."""
        if module not in self._definitions:
            self._definitions[module] = {
                s.name: s
                for s in self.tree(module).body
                if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            }
        return self._definitions[module]

    def imported(self, nodes, module: str) -> set[str]:
        """The entries that the import statements among ``nodes`` load: modules (each with
        the packages above it), or ``M:f`` for a function or class imported by name from M
        (M's top level and f, not all of M's functions)."""
        found = set()
        for statement in nodes:
            if isinstance(statement, ast.Import):
                whole = [a.name for a in statement.names]
            elif isinstance(statement, ast.ImportFrom):
                source = self._absolute(statement, module)
                if source not in self.modules:
                    continue
                defined = self.definitions(source)
                whole = [
                    f"{source}.{a.name}"
                    for a in statement.names
                    if f"{source}.{a.name}" in self.modules
                ]
                named = [
                    a.name
                    for a in statement.names
                    if a.name in defined and f"{source}.{a.name}" not in self.modules
                ]
                found |= {f"{source}:{name}" for name in named}
                if len(whole) + len(named) < len(statement.names) or not named:
                    whole.append(source)  # a constant or re-export of it, or a submodule
                whole.append(source.rpartition(".")[0])
            else:
                continue
            for name in whole:
                parts = name.split(".")
                found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        return {e for e in found if e.partition(":")[0] in self.modules}

    def index(self, module: str) -> dict:
        """One walk of the module: the import statements run on import (``top``), those in
        each top-level function or class with the names it uses (``defs``), and all."""
        if module not in self._indexes:
            top, defs = [], {}
            imports = (ast.Import, ast.ImportFrom)
            for statement in self.tree(module).body:
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    walked = list(ast.walk(statement))
                    defs[statement.name] = (
                        [n for n in walked if isinstance(n, imports)],
                        {n.id for n in walked if isinstance(n, ast.Name)},
                    )
                    if not isinstance(statement, ast.ClassDef):  # decorators run on import
                        top += [
                            n
                            for d in statement.decorator_list
                            for n in ast.walk(d)
                            if isinstance(n, imports)
                        ]
                else:
                    top += [n for n in ast.walk(statement) if isinstance(n, imports)]
            self._indexes[module] = {
                "top": top,
                "defs": defs,
                "all": top + [n for imported, _ in defs.values() for n in imported],
            }
        return self._indexes[module]

    def _function_imports(self, module: str, name: str) -> list:
        """The imports of function (or class) ``name`` and of the module's functions it
        names, transitively (a helper's lazy imports count for its callers)."""
        defs = self.index(module)["defs"]
        if name not in defs:
            raise KeyError(f"{module} defines no {name!r}")
        nodes, seen, stack = [], set(), [name]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            imported, names = defs[current]
            nodes += imported
            stack.extend(n for n in names if n in defs)
        return nodes

    def entry_modules(self, entry: str) -> set[str]:
        """The package modules that an entry (``module`` or ``module:function``) may run."""
        if entry.partition(":")[0] not in self.modules:
            return set()  # outside the package (a plugin): not ours to track
        if entry in self._closures:
            return set(self._closures[entry])
        seen, stack = set(), [entry]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self.children(current))
        self._closures[entry] = frozenset(e.partition(":")[0] for e in seen)
        return set(self._closures[entry])

    def children(self, entry: str) -> frozenset:
        """The entries that ``entry`` loads directly (parsed once per entry)."""
        if entry not in self._children:
            module, _, function = entry.partition(":")
            found = set()
            if function:
                nodes = self.index(module)["top"] + self._function_imports(module, function)
            else:
                nodes = self.index(module)["all"]
                if self.is_package(module) and b"iter_modules" in self.source(module):
                    found |= {m for m in self.modules if m.startswith(module + ".")}
            parts = module.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts))}  # its packages
            found |= self.imported(nodes, module)
            self._children[entry] = frozenset(found)
        return self._children[entry]

    def decorated(self, decorator: str, under: str = PACKAGE) -> dict[str, str]:
        """Registrations made by ``decorator`` in the modules under ``under``, found
        statically: name -> ``"module:function"`` of every top-level function decorated with
        ``@decorator("name")`` (a string literal) or bare ``@decorator`` (its own name)."""
        found: dict[str, str] = {}
        for module in sorted(self.modules):
            if module != under and not module.startswith(under + "."):
                continue
            if decorator.encode() not in self.source(module):
                continue  # cheap: most modules register nothing
            for name, node in self.definitions(module).items():
                for d in node.decorator_list:
                    called = d.func if isinstance(d, ast.Call) else d
                    if getattr(called, "attr", getattr(called, "id", None)) != decorator:
                        continue
                    key = name
                    if isinstance(d, ast.Call):
                        first = d.args[0] if d.args else None
                        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                            raise ValueError(
                                f"{module}:{name}: @{decorator}(...) must name its "
                                "registration by a string literal"
                            )
                        key = first.value
                    if key in found:
                        raise ValueError(
                            f"@{decorator}({key!r}) twice: {found[key]} and {module}:{name}"
                        )
                    found[key] = f"{module}:{name}"
        return found

    def code_hash(self, *entries: str) -> str:
        """SHA-256 (16 hex digits) of the code that ``entries`` run: each module's name and
        contents, a dispatcher's function by its source alone, CONFIG_ONLY left out."""
        modules = set().union(*(self.entry_modules(e) for e in entries)) - CONFIG_ONLY
        digest = hashlib.sha256()
        for module in sorted(modules - DISPATCHERS):
            digest.update(module.encode() + b"\0" + self.source(module) + b"\0")
        for entry in sorted(entries):
            module, _, function = entry.partition(":")
            if module in DISPATCHERS and function:
                node = self.definitions(module)[function]
                lines = self.source(module).splitlines()[node.lineno - 1 : node.end_lineno]
                digest.update(entry.encode() + b"\0" + b"\n".join(lines) + b"\0")
        return digest.hexdigest()[:16]


@cache
def _graph() -> ImportGraph:
    return ImportGraph()


@cache
def code_hash(*entries: str) -> str:
    """The hash of the package code that ``entries`` run (see the module docstring)."""
    return _graph().code_hash(*entries)


@cache
def _decorated(decorator: str, under: str) -> dict[str, str]:
    return _graph().decorated(decorator, under)


def registered_entry(registry: dict, decorator: str, under: str, name: str) -> str:
    """The ``"module:function"`` that registers ``name`` with ``decorator`` in the package
    folder ``under`` (found statically); for a plugin's registration (outside the package,
    so not hashed), its callable's own module and name."""
    found = _decorated(decorator, under)
    if name in found:
        return found[name]
    if name in registry:
        function = registry[name]
        return f"{function.__module__}:{function.__qualname__}"
    raise KeyError(f"no @{decorator}({name!r}) under {under}; known: {sorted(found)}")


def load_registered(registry: dict, decorator: str, under: str, name: str):
    """The callable registered as ``name``: imports the module whose ``@decorator`` registers
    it (:func:`registered_entry`), unless a plugin has registered it already."""
    if name not in registry:
        module = registered_entry(registry, decorator, under, name).partition(":")[0]
        importlib.import_module(module)
    if name not in registry:
        raise KeyError(
            f"importing {registered_entry(registry, decorator, under, name)} registered no {name!r}"
        )
    return registry[name]


def modules_of(*entries: str) -> list[str]:
    """The package modules ``entries`` run, sorted (what :func:`code_hash` hashes, besides
    dispatchers' function sources)."""
    graph = _graph()
    return sorted(set().union(*(graph.entry_modules(e) for e in entries)) - CONFIG_ONLY)
