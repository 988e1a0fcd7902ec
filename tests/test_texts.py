"""Every message a raiser gives is a catalogue id (#14): a parameter typed `str | Text` (an
error's `message` or `reason`, `FieldReader.fail`'s message) takes `N_("…")` or
`Text.of(N_("…"), …)`, never an f-string or a sentence left unmarked, which the workspace
could only show in English. The check reads the source (an AST walk of src/newsletter), so
it needs no error to be provoked.

What it cannot see: a sentence that reaches the parameter through another function's
argument, or through an attribute."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import newsletter
from newsletter import errors
from newsletter.errors import NewsletterError

PACKAGE = Path(newsletter.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
ERRORS = {name: cls for name, cls in vars(errors).items()
          if isinstance(cls, type) and issubclass(cls, NewsletterError)}
#: Files whose raisers still give plain sentences, which reach the CLI, the API, the service's
#: start or the log, not a workspace page (configuration, the store, backups, bounce mailboxes
#: and webhooks, API tokens, DKIM keys, sessions). A file may leave the list, never join it.
PENDING = {
    "api/people.py", "attributes.py", "bounces/mailboxes.py", "bounces/provider_auth.py", "bounces/providers.py",
    "config.py", "hooks/delivery.py", "mail/dkim.py", "people/moves.py", "routine/series.py",
    "sending/submitted.py", "service/supervisor.py", "staff/api_tokens.py", "store/__init__.py", "web/app.py",
}
_PLACEHOLDERS = re.compile(r"%\(\w+\)s|\{\w*\}")


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], set[str]]:
    """A definition's positional parameters, in order, and those typed to take a Text."""
    args = function.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    typed = {a.arg for a in every if a.annotation is not None and "Text" in ast.unparse(a.annotation)}
    return [a.arg for a in [*args.posonlyargs, *args.args]], typed


Parameters = tuple[list[str], set[str]]


def _taking_text() -> dict[str, list[Parameters]]:
    """Every function and method of the package with a parameter typed `str | Text`, by name
    (several of one name: each is checked); each error class by its name (its `__init__`)."""
    found: dict[str, list[Parameters]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "__init__":
                positional, typed = _parameters(node)
                if typed:
                    found.setdefault(node.name, []).append((positional, typed))
    for name, cls in ERRORS.items():
        signature = inspect.signature(cls.__init__)
        typed = {p.name for p in signature.parameters.values() if "Text" in str(p.annotation)}
        found[name] = [([p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD], typed)]
    return found


def _has_words(literal: str) -> bool:
    return any(ch.isalpha() for ch in _PLACEHOLDERS.sub("", literal))


class _Raisers(ast.NodeVisitor):
    """Walks one module for calls that give a text parameter a plain sentence."""

    def __init__(self, taking: dict[str, list[Parameters]]):
        self.taking = taking
        self.found: list[tuple[int, str]] = []
        self.classes: list[str] = []
        self.assigned: list[dict[str, list[ast.expr]]] = [{}]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        names: dict[str, list[ast.expr]] = {}
        for inner in ast.walk(node):
            if isinstance(inner, ast.Assign):
                for target in inner.targets:
                    if isinstance(target, ast.Name):
                        names.setdefault(target.id, []).append(inner.value)
        self.assigned.append(names)
        self.generic_visit(node)
        self.assigned.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        if any(name in typed and self._plain(value) for (positional, typed), skip in self._targets(node)
               for name, value in self._bound(node, positional[skip:])):
            self.found.append((node.lineno, ast.unparse(node)[:120]))
        self.generic_visit(node)

    def _targets(self, node: ast.Call) -> list[tuple[Parameters, int]]:
        """What the call reaches (parameters, and how many leading ones the call does not pass)."""
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "__init__":
            if isinstance(func.value, ast.Call) and getattr(func.value.func, "id", "") == "super":
                cls = ERRORS.get(self.classes[-1]) if self.classes else None
                parent = cls.__mro__[1].__name__ if cls is not None else None
                return [(self.taking[parent][0], 1)] if parent in ERRORS else []
            if isinstance(func.value, ast.Name) and func.value.id in ERRORS:
                return [(self.taking[func.value.id][0], 0)]
            return []
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name in ERRORS:
            return [(self.taking[name][0], 1)]
        is_method = isinstance(func, ast.Attribute)
        return [((positional, typed), 1 if is_method and positional[:1] in (["self"], ["cls"]) else 0)
                for positional, typed in self.taking.get(name, [])]

    @staticmethod
    def _bound(node: ast.Call, positional: list[str]) -> list[tuple[str, ast.expr]]:
        bound = [(positional[i], arg) for i, arg in enumerate(node.args)
                 if i < len(positional) and not isinstance(arg, ast.Starred)]
        return bound + [(k.arg, k.value) for k in node.keywords if k.arg]

    def _plain(self, value: ast.expr, seen: frozenset[str] = frozenset()) -> bool:
        """Whether `value` is (or may be) a sentence that no catalogue can have."""
        if isinstance(value, ast.JoinedStr):
            return True
        if isinstance(value, ast.Constant):
            return isinstance(value.value, str) and _has_words(value.value)
        if isinstance(value, ast.BinOp):
            return any(isinstance(side, (ast.JoinedStr, ast.Constant)) or self._plain(side, seen)
                       for side in (value.left, value.right))
        if isinstance(value, ast.IfExp):
            return self._plain(value.body, seen) or self._plain(value.orelse, seen)
        if isinstance(value, ast.Call):
            func = value.func
            if isinstance(func, ast.Name) and func.id == "N_":
                return False
            called = ast.unparse(func)
            if called in ("Text", "Text.of", "text_of") and value.args:
                return self._plain(value.args[0], seen)
            return False
        if isinstance(value, ast.Name) and value.id not in seen:
            return any(self._plain(assigned, seen | {value.id}) for assigned in self.assigned[-1].get(value.id, ()))
        return False


def _plain_sentences() -> dict[str, list[tuple[int, str]]]:
    taking = _taking_text()
    found: dict[str, list[tuple[int, str]]] = {}
    for path in SOURCES:
        walker = _Raisers(taking)
        walker.visit(ast.parse(path.read_text(encoding="utf-8")))
        if walker.found:
            found[str(path.relative_to(PACKAGE))] = walker.found
    return found


def test_raisers_give_catalogue_ids_not_plain_sentences():
    found = _plain_sentences()
    new = {path: calls for path, calls in found.items() if path not in PENDING}
    assert not new, "give these N_(…) or Text.of(N_(…), …), and their fr, es and ar translations: " + "".join(
        f"\n  {path}:{line}: {call}" for path, calls in sorted(new.items()) for line, call in calls)


def test_the_pending_files_still_have_plain_sentences():
    """The allow-list shrinks as files are done: a file with nothing left to do leaves it."""
    found = _plain_sentences()
    done = sorted(path for path in PENDING if path not in found)
    assert not done, f"nothing is left to do in {done}: take them off PENDING"


def test_the_check_sees_each_kind_of_plain_sentence():
    """An f-string, an unmarked literal, a sentence put together, one held in a variable, and a
    method's text parameter are found; N_, Text.of(N_(…)) and a bare placeholder pass."""
    source = '''
class InvalidField(NewsletterError):
    pass
def checks(reader, x):
    raise InvalidField("name", f"at most {x}")
    raise InvalidField("name", "a list needs a name")
    raise InvalidField("name", "choose one of " + x)
    raise ContentError("p", "ok" if x else f"no {x}")
    said = f"no {x}"
    raise SegmentError("e", 1, said)
    raise reader.fail(("a",), f"expected text, got {x}")
    raise InvalidField("name", N_("a list needs a name"))
    raise InvalidField("name", Text.of(N_("at most %(n)s"), n=x))
    raise ImportFileError("p", Text.of(f"at most {x}"))
    raise InvalidField("name", "%(a)s: %(b)s")
    raise InvalidField(x, x)
'''
    walker = _Raisers(_taking_text())
    walker.visit(ast.parse(source))
    assert [line for line, _call in walker.found] == [5, 6, 7, 8, 10, 11, 14]


def test_a_reason_kept_before_its_text_was_is_said_from_its_english():
    from newsletter.sending.campaigns import status_said
    from newsletter.store import Campaign
    from newsletter.texts import Text

    assert status_said(Campaign(status_reason="paused by an administrator", status_said=None)) \
        == Text("paused by an administrator")
    assert status_said(Campaign(status_reason=None, status_said=None)) is None
