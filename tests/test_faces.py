"""The arrows: the faces (cli/, web/, workspace/) call use cases and never the store; the library names no
command to run; the installation builds on nothing that builds on it; no import cycle."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import newsletter
from newsletter import errors

PACKAGE = Path(newsletter.__file__).parent
FACES = ("cli", "web", "workspace", "service", "api")
#: Faces still waiting for their use cases. Empty since the sending part of #11 was merged; a
#: file may leave the list, never join it.
PENDING: set[str] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (a function-level import counts too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import store`
    return found


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources(*FACES), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_face_imports_the_store_or_opens_a_session(path):
    relative = str(path.relative_to(PACKAGE))
    if relative in PENDING:
        pytest.skip("pending: its use cases are the sending part of #11")
    imported = _imports(path)
    assert not {m for m in imported if m == "newsletter.store" or m.startswith(("newsletter.store.", "sqlalchemy"))}
    text = path.read_text(encoding="utf-8")
    assert ".store.session(" not in text and ".store.engine" not in text, "a face opens the store itself"


@pytest.mark.parametrize("face", FACES)
def test_a_face_knows_no_other_face_but_the_composition_root_does(face):
    """Faces meet only in `newsletter.app` (the site: web's pages with the workspace and the API
    mounted) and `service/` (which serves it, and which `newsletter serve` starts); the workspace
    and the API may use web's helpers (`web.security`, `web.forms`, `web.pages`), nothing knows
    the CLI, and web/ knows no one."""
    may = {"cli": {"service"}, "web": set(), "workspace": {"web"}, "api": {"web"},
           "service": {"web", "workspace", "api"}}[face]
    for path in _sources(face):
        imported = {m.split(".")[1] for m in _imports(path) if m.startswith("newsletter.") and m.count(".") >= 1}
        others = (imported & set(FACES)) - {face} - may
        assert not others, f"{path.relative_to(PACKAGE)} imports the {sorted(others)} face(s)"
    root = {m for m in _imports(PACKAGE / "app.py") if m.startswith("newsletter.")}
    assert {"newsletter.web", "newsletter.workspace", "newsletter.api"} <= root


def test_the_pending_faces_exist():
    """The allow-list names real files (so that it empties as they are done, not as they vanish)."""
    assert all((PACKAGE / p).exists() for p in PENDING)


def test_the_installation_builds_on_nothing_that_builds_on_it():
    imported = {m for m in _imports(PACKAGE / "installation.py") if m.startswith("newsletter.")}
    assert not {m for m in imported if m.startswith(("newsletter.people", "newsletter.sending", "newsletter.mail",
                                                     "newsletter.bounces", "newsletter.web", "newsletter.cli",
                                                     "newsletter.staff", "newsletter.workspace"))}


def test_no_import_cycle():
    """Between the modules of the package, counting imports inside functions too."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    # A package's __init__ is imported on the way to any of its modules: not an edge of its own.
    for name, edges in graph.items():
        graph[name] = {m for m in edges if not name.startswith(m + ".")}
    visiting, done = [], set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, "import cycle: " + " -> ".join([*visiting[visiting.index(name):], name])
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def _sample(cls: type) -> Exception:
    """An instance of an error class, its arguments made up from their names."""
    values = {"problems": ["a problem"], "available": ("en",), "chain": ("en",), "code": 550, "line": 3,
              "retry_after": 120, "counts": {"subscribers": 3}}
    parameters = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    return cls(*(values.get(p.name, f"some-{p.name}") for p in parameters
                 if p.default is inspect.Parameter.empty))


@pytest.mark.parametrize("name", errors.__all__)
def test_library_errors_name_no_command_to_run(name):
    """The faces word the hints ("run `newsletter init`"); the library says what is wrong."""
    message = str(_sample(getattr(errors, name)))
    assert "`newsletter" not in message and "run `" not in message.lower(), message
