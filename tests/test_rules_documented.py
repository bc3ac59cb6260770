"""Every rule id the code can emit is registered (llamabuild/data/rules.toml), every registered
rule is emitted, and docs/rules.md is the catalogue generated from the registry.

Rule ids are collected from the source by AST, not by grep:

- the string first argument of a call to a finding helper (`error`, `warning`, `info`,
  `Finding`, and any function that passes one of its own parameters on as a helper's rule),
- `rule="..."` keywords (`Finding(rule=...)`, `dataclasses.replace(f, rule=...)`) and
  `{"rule": "..."}` entries,
- a non-literal rule argument resolved inside its function: string literals in the
  expression (`"a" if x else "b"`), assignments to the name (also tuple unpacking, the element
  at the same position), loops over literal collections, and calls to functions of the same
  module (their returned literals, or the tuple element at that position),
- `rule = "..."` in llamabuild/data/*.toml (a `x["rule"]` subscript reads those).

A rule argument that none of this resolves fails the test, naming the call: teach the test
about the new pattern rather than let a rule go undocumented.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from llamabuild.core.findings import Severity, error, warning
from llamabuild.core.rules import catalogue, parse, registry

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llamabuild"
README = ROOT / "README.md"
CATALOGUE = ROOT / "docs" / "rules.md"

HELPERS = {"error": 0, "warning": 0, "info": 0, "Finding": 0}
RULE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
DATA = "<data>"  # resolved to a data file's `rule = ...` (collected from the files themselves)


@dataclass(frozen=True)
class Site:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.what}"


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _strings(node: ast.AST | None) -> set[str]:
    """Rule-shaped string literals anywhere in an expression."""
    if node is None:
        return set()
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and RULE_ID.fullmatch(n.value)
    }


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.FunctionDef | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node  # type: ignore[return-value]
    return None


class Resolver:
    """Resolves a non-literal rule argument inside one module (a few hops, no execution)."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.functions = {
            n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }

    def value(self, node: ast.expr, scope: ast.AST, index: int | None, depth: int = 0) -> set[str]:
        """Rules an expression can evaluate to (its element `index` when it is a tuple)."""
        if depth > 6:
            return set()
        if isinstance(node, ast.Call) and (_callee(node) or "") in self.functions:
            return self.returned(self.functions[_callee(node) or ""], index, depth + 1)
        if isinstance(node, ast.Name):
            return self.name(node.id, scope, index, depth + 1)
        if isinstance(node, ast.Subscript) or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
        ):
            key = node.slice if isinstance(node, ast.Subscript) else None
            if isinstance(key, ast.Constant) and key.value == "rule":
                return {DATA}  # entry["rule"]: a data file's rule = "..." entry
            base = node.value if isinstance(node, ast.Subscript) else node.func.value  # type: ignore[attr-defined]
            return set().union(
                *(self.value(item, scope, index, depth + 1) for item in self.items(base, scope))
            )
        if isinstance(node, ast.Tuple | ast.List) and index is not None and index < len(node.elts):
            return self.value(node.elts[index], scope, None, depth + 1)
        return _strings(node)

    def returned(self, func: ast.AST, index: int | None, depth: int) -> set[str]:
        """What a function returns (the tuple element at `index` when it returns tuples)."""
        out: set[str] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Return) and node.value is not None:
                out |= self.value(node.value, func, index, depth)
        return out

    def bindings(self, name: str, scope: ast.AST) -> Iterator[tuple[ast.AST, ast.expr, bool]]:
        """(target, value, is_loop) of each binding of `name`: the function's, else the module's."""
        for where in (scope, self.tree) if scope is not self.tree else (scope,):
            found = False
            for node in ast.walk(where):
                if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and node.value:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if name in _names(target):
                            found = True
                            yield target, node.value, False
                elif isinstance(node, ast.For | ast.comprehension) and name in _names(node.target):
                    found = True
                    yield node.target, node.iter, True
            if found:
                return

    def items(self, node: ast.expr, scope: ast.AST) -> list[ast.expr]:
        """The elements of a container: a literal, a name bound to one, dict values."""
        if isinstance(node, ast.Dict):
            return [v for v in node.values if v is not None]
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return list(node.elts)
        if isinstance(node, ast.Call) and node.args and _callee(node) in CONTAINERS:
            return self.items(node.args[0], scope)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return self.items(node.func.value, scope)  # TABLE.items(), TABLE.values()
        if isinstance(node, ast.Name):
            return [
                item
                for target, value, loop in self.bindings(node.id, scope)
                if not loop and isinstance(target, ast.Name)
                for item in self.items(value, scope)
            ]
        return []

    def name(self, name: str, scope: ast.AST, index: int | None, depth: int) -> set[str]:
        out: set[str] = set()
        for target, value, loop in self.bindings(name, scope):
            if isinstance(target, ast.Name):
                if loop:  # for rule in ("a", "b"): / for rule in TABLE:
                    out |= set().union(*(_strings(i) for i in self.items(value, scope)))
                else:
                    out |= self.value(value, scope, index, depth)
                continue
            pos = _position(target, name)
            if pos is None:  # deeper unpacking: every rule-shaped literal of the value
                out |= set().union(
                    _strings(value), *(_strings(i) for i in self.items(value, scope))
                )
            elif loop:  # for rule, msg in ((...), ...): element `pos` of each item
                for item in self.items(value, scope):
                    out |= self.value(item, scope, pos, depth)
            else:  # rule, reason, hint = classify(...)
                out |= self.value(value, scope, pos, depth)
        return out


CONTAINERS = {"tuple", "list", "set", "frozenset", "dict", "sorted"}


def _names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _position(target: ast.AST, name: str) -> int | None:
    """Index of `name` in a flat tuple target, None when nested or absent."""
    if isinstance(target, ast.Tuple | ast.List):
        for i, elt in enumerate(target.elts):
            if isinstance(elt, ast.Name) and elt.id == name:
                return i
    return None


def collect(parsed: list[tuple[Path, ast.Module]]) -> tuple[dict[str, list[Site]], list[Site]]:
    """rule id -> where it is produced, and the call sites no pattern resolved."""
    helpers = dict(HELPERS)
    # Wrappers: a function that hands one of its parameters on as a helper's rule is a helper.
    changed = True
    while changed:
        changed = False
        for _path, tree in parsed:
            parents = _parents(tree)
            for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
                pos = helpers.get(_callee(call) or "")
                if pos is None or len(call.args) <= pos or not isinstance(call.args[pos], ast.Name):
                    continue
                func = _enclosing_function(call, parents)
                if func is None or func.name in helpers:
                    continue
                params = [a.arg for a in func.args.args]
                if params and params[0] in ("self", "cls"):
                    params = params[1:]
                arg = call.args[pos].id  # type: ignore[attr-defined]
                if arg in params:
                    helpers[func.name] = params.index(arg)
                    changed = True
    found: dict[str, list[Site]] = {}
    unresolved: list[Site] = []

    def add(rules: set[str], site: Site) -> None:
        for rule in rules - {DATA}:
            found.setdefault(rule, []).append(site)

    for path, tree in parsed:
        parents = _parents(tree)
        resolver = Resolver(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == "rule":
                        add(_strings(v), Site(path, node.lineno, '{"rule": ...}'))
            if not isinstance(node, ast.Call):
                continue
            name = _callee(node) or ""
            pos = helpers.get(name)
            for kw in node.keywords:
                if kw.arg == "rule" and pos is None:
                    add(_strings(kw.value), Site(path, node.lineno, f"{name}(rule=...)"))
            if pos is None:
                continue
            arg: ast.expr | None = node.args[pos] if len(node.args) > pos else None
            if arg is None:
                arg = next((kw.value for kw in node.keywords if kw.arg == "rule"), None)
            if arg is None:
                continue
            site = Site(path, node.lineno, f"{name}({ast.unparse(arg)}, ...)")
            if isinstance(arg, ast.Constant):
                if isinstance(arg.value, str):
                    add({arg.value}, site)
                continue
            func = _enclosing_function(node, parents)
            if (
                func is not None
                and func.name in helpers
                and isinstance(arg, ast.Name)
                and arg.id in [a.arg for a in func.args.args]
            ):
                continue  # a wrapper's own parameter: its callers are collected
            rules = resolver.value(arg, func or tree, None)
            if rules:
                add(rules, site)
            else:
                unresolved.append(site)
    return found, unresolved


@cache
def code_rules() -> tuple[dict[str, list[Site]], list[Site]]:
    found, unresolved = collect(list(_modules()))
    for rule, path in toml_rules():
        found.setdefault(rule, []).append(Site(path, 1, f"rule = {rule!r}"))
    return found, unresolved


def toml_rules() -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "rule" and isinstance(v, str):
                    out.append((v, path))
                else:
                    walk(v, path)
        elif isinstance(value, list):
            for v in value:
                walk(v, path)

    for path in sorted((PACKAGE / "data").glob("*.toml")):
        walk(tomllib.loads(path.read_text(encoding="utf-8")), path)
    return out


def test_every_emitted_rule_is_registered() -> None:
    found, unresolved = code_rules()
    assert not unresolved, "rule arguments the test cannot resolve:\n" + "\n".join(
        map(str, unresolved)
    )
    missing = {r: found[r] for r in sorted(set(found) - set(registry()))}
    assert not missing, "emitted but not in llamabuild/data/rules.toml:\n" + "\n".join(
        f"{rule}  ({sites[0]})" for rule, sites in missing.items()
    )


def test_every_registered_rule_is_emitted_where_it_says() -> None:
    found, _ = code_rules()
    stale = sorted(set(registry()) - set(found))
    assert not stale, "in llamabuild/data/rules.toml but never emitted: " + ", ".join(stale)
    where = {rule: {str(s.path.relative_to(ROOT)) for s in sites} for rule, sites in found.items()}
    wrong = [
        f"{r.id}: source {r.source}, raised in {sorted(where[r.id])}"
        for r in registry().values()
        if r.source not in where[r.id]
    ]
    assert not wrong, "\n".join(wrong)


def test_docs_rules_md_is_generated_from_the_registry() -> None:
    assert CATALOGUE.read_text(encoding="utf-8") == catalogue(), (
        "docs/rules.md differs from the registry: "
        "run `python -m llamabuild.core.rules > docs/rules.md`"
    )
    text = CATALOGUE.read_text(encoding="utf-8")
    assert all(f"| `{rule}` |" in text for rule in registry())


def test_readme_links_the_catalogue_and_lists_no_rules() -> None:
    """The README is a front door: the rules live in docs/rules.md only."""
    readme = README.read_text(encoding="utf-8")
    assert "docs/rules.md" in readme
    tables = [line for line in readme.splitlines() if line.startswith("| rule |")]
    assert not tables, "a rule table in README.md: the catalogue is docs/rules.md"
    for doc in sorted((ROOT / "docs").glob("*.md")):
        if doc != CATALOGUE:
            assert "| rule |" not in doc.read_text(encoding="utf-8"), doc


def test_findings_refuse_unregistered_rules_and_the_wrong_severity() -> None:
    assert error("missing-uuid", "m").rule == "missing-uuid"
    assert warning("stray-rpath", "m").severity is Severity.WARNING
    with pytest.raises(ValueError, match="not registered"):
        error("no-such-rule", "m")
    with pytest.raises(ValueError, match="registered as error"):
        warning("missing-uuid", "m")


def test_the_registry_refuses_malformed_entries() -> None:
    good = {"severity": "error", "area": "verify", "when": "w", "source": "s"}
    assert parse({"a-b": good})["a-b"].severity == "error"
    for bad in (
        {**good, "severity": "fatal"},
        {**good, "area": "nowhere"},
        {**good, "when": "two\nlines"},
        {**good, "also": ["verify"]},
        {**good, "typo": 1},
    ):
        with pytest.raises(ValueError, match=r"\[a-b\]"):
            parse({"a-b": bad})


def test_the_collector_sees_every_way_of_producing_a_rule() -> None:
    """The collector itself: literals, data-file rules, and rules resolved through tuples."""
    found, _ = code_rules()
    assert {"missing-minos", "dsym-layout", "entitlement-type"} <= set(found)  # literals
    assert {r for r, _ in toml_rules()} <= set(found)  # rpath-dependency, ... via entry["rule"]
    # classify_dylib returns ("not-shipped-with-macos", reason, hint) into error(rule, ...)
    assert {"not-shipped-with-macos", "private-framework", "non-system-dependency"} <= set(found)
    assert len(found) >= 56


SYNTHETIC = """
from llamabuild.core.findings import error, warning, Finding, Severity
TABLE = {"a": ("from-dict", "msg"), "b": ("from-dict-2", "msg")}
PAIRS = (("from-loop", "m"), ("from-loop-2", "m"))

def classify(x):
    if x:
        return "returned-tuple", "why", None
    return None

def _finding(arch, rule, message):
    return error(rule, message, arch=arch)

class Checker:
    def emit(self, rule, msg):
        return warning(rule, msg)

    def run(self, x, key):
        out = [_finding("arm64", "via-wrapper", "m"), self.emit("via-method", "m")]
        out.append(error("too-new-symbol" if x else "too-new-library", "m"))
        rule, msg = TABLE[key]
        out.append(error(rule, msg))
        for rule2, msg2 in PAIRS:
            out.append(warning(rule2, msg2))
        found = classify(x)
        if found:
            r, why, hint = found
            out.append(error(r, why, hint=hint))
        out.append(Finding("keyword-rule", Severity.ERROR, "m"))
        out.append(Finding(rule="keyword-rule-2", severity=Severity.ERROR, message="m"))
        return out
"""


def test_the_collector_resolves_common_patterns(tmp_path: Path) -> None:
    """Literals, IfExp, dict tables, loops over tuples, wrappers, methods, returned tuples."""
    path = tmp_path / "synthetic.py"
    found, unresolved = collect([(path, ast.parse(SYNTHETIC))])
    assert not unresolved
    assert set(found) == {
        "from-dict",
        "from-dict-2",
        "from-loop",
        "from-loop-2",
        "returned-tuple",
        "via-wrapper",
        "via-method",
        "too-new-symbol",
        "too-new-library",
        "keyword-rule",
        "keyword-rule-2",
    }
    opaque = (
        "from llamabuild.core.findings import error\ndef f(x):\n    return error(x.rule, 'm')\n"
    )
    assert [s.what for s in collect([(path, ast.parse(opaque))])[1]] == ["error(x.rule, ...)"]
