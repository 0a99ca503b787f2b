"""The directions imports may take between the project's parts (README, "What is here").

- `chaincode/protocol` is what the contract and the gateway both speak: it imports only the
  standard library, `rfc8785`, `cryptography` and itself.
- the gateway imports `chaincode.protocol` and nothing else of `chaincode` (the contract's
  modules, the shim), and `network/` only through gateway/core/ca.py (minting identities);
- `chaincode` imports neither the gateway, the networks nor the face engine;
- `network` imports no gateway module but the client-side readiness check
  (gateway/fabric/ready.py);
- `face_engine` imports none of the gateway, the networks or the chaincode;
- nothing outside tests/ imports tests/ (its modules are on sys.path by their bare names).

Every import is read from the source (ast), including those inside functions and under
TYPE_CHECKING, and `importlib.import_module("...")` with a literal name.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("chaincode", "gateway", "network", "face_engine")
CHECKED = (*PACKAGES, "scripts")

# Edges that break a rule on purpose, each with why. An entry no import uses any more fails
# `test_allowed_edges_are_all_used`, so it is deleted once its reason is gone.
ALLOWED: dict[tuple[str, str], str] = {
    # The shim benchmark drives `python -m chaincode` from the tests' fake peer: the fake peer
    # is test infrastructure, and the benchmark measures the shim against it.
    ("scripts.bench_shim", "shim_testkit"):
        "the shim benchmark's fake peer is the tests' (tests/chaincode/shim/shim_testkit.py)",
}

# cryptography: Fabric's ECDSA low-S rule and certificate DNs are part of what both sides speak.
PROTOCOL_THIRD_PARTY = frozenset({"rfc8785", "cryptography"})


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported module (or the package a name is taken from), dotted
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(root: Path, path: Path) -> Iterator[Edge]:
    source = module_name(root, path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Edge(source, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod where there is one.
                sub = f"{module}.{alias.name}"
                yield Edge(source, sub if _is_module(root, sub) else module, path, node.lineno)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))):
            yield Edge(source, node.args[0].value, path, node.lineno)


def all_edges(root: Path) -> list[Edge]:
    edges = []
    for top in CHECKED:
        for path in sorted((root / top).rglob("*.py")):
            edges.extend(imports_of(root, path))
    return edges


def names_of_test_modules(root: Path) -> set[str]:
    """Bare names the test modules are imported by (tests/ and its folders are on sys.path)."""
    return {p.stem for p in (root / "tests").rglob("*.py")} - {"__init__", "conftest"}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def rule_broken(edge: Edge, test_modules: set[str]) -> str | None:
    """Why `edge` is forbidden, or None."""
    src, dst = edge.source, edge.target
    top = dst.split(".")[0]
    if _under(dst, "tests") or (top in test_modules and not _under(src, "tests")):
        return "only tests import tests"
    if _under(src, "chaincode.protocol"):
        if _under(dst, "chaincode.protocol"):
            return None
        if top in PACKAGES:
            return "chaincode.protocol imports nothing of the project but itself"
        if top not in sys.stdlib_module_names and top not in PROTOCOL_THIRD_PARTY:
            return ("chaincode.protocol stays dependency-light "
                    f"(allowed: {sorted(PROTOCOL_THIRD_PARTY)})")
        return None
    if _under(src, "chaincode") and top in ("gateway", "network", "face_engine"):
        return "chaincode imports neither the gateway, the networks nor the face engine"
    if _under(src, "gateway"):
        if top == "chaincode" and not _under(dst, "chaincode.protocol"):
            return "the gateway imports chaincode.protocol only"
        if top == "network" and src != "gateway.core.ca":
            return "the gateway reaches network/ only through gateway.core.ca"
    if _under(src, "network") and top == "gateway" and dst != "gateway.fabric.ready":
        return "network imports no gateway module but gateway.fabric.ready"
    if _under(src, "face_engine") and top in ("gateway", "network", "chaincode"):
        return "face_engine imports none of the gateway, the networks or the chaincode"
    return None


def violations(root: Path, allowed: dict[tuple[str, str], str]
               ) -> tuple[list[str], set[tuple[str, str]]]:
    """(forbidden edges not allowed, allowed edges that were used)."""
    test_modules = names_of_test_modules(root)
    found, used = [], set()
    for edge in all_edges(root):
        why = rule_broken(edge, test_modules)
        if why is None:
            continue
        if (edge.source, edge.target) in allowed:
            used.add((edge.source, edge.target))
            continue
        found.append(f"{edge} ({why})")
    return sorted(set(found)), used


def test_no_forbidden_import() -> None:
    found, _ = violations(REPO, ALLOWED)
    assert not found, "forbidden import directions:\n" + "\n".join(found)


def test_allowed_edges_are_all_used() -> None:
    _, used = violations(REPO, ALLOWED)
    stale = set(ALLOWED) - used
    assert not stale, f"allow-list entries no import needs any more (delete them): {stale}"


# --- the checker itself, on a synthetic tree ---------------------------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    for top in (*CHECKED, "tests"):
        (root / top).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            if str(parent) not in (".", "tests", "scripts") and not str(parent).startswith("tests"):
                (root / parent / "__init__.py").touch()
        path.write_text(text)
    return root


BASE = {
    "chaincode/protocol/canonical.py": "import json\nimport rfc8785\n",
    "chaincode/mip/passports.py": "from chaincode.protocol import canonical\n",
    "chaincode/shim/identity.py": "",
    "gateway/fabric/ready.py": "",
    "gateway/core/ca.py": "from network.devnet import pki\n",
    "gateway/services/ledger.py": "from chaincode.protocol.canonical import canonical_json\n",
    "network/devnet/pki.py": "",
    "network/fabric/main.py": "from gateway.fabric import ready\n",
    "face_engine/engine.py": "import numpy\n",
    "tests/chaincode/shim/shim_testkit.py": "",
    "tests/gateway/test_x.py": "import shim_testkit\nfrom chaincode.mip import passports\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, BASE)
    assert violations(root, {}) == ([], set())


@pytest.mark.parametrize(("name", "text", "rule"), [
    ("gateway/services/x.py", "from chaincode.mip import passports\n", "chaincode.protocol only"),
    ("gateway/services/x.py", "import chaincode.shim.identity\n", "chaincode.protocol only"),
    ("gateway/services/x.py", "def f():\n    from chaincode.mip.passports import X\n",
     "chaincode.protocol only"),
    ("gateway/services/x.py", "from ..core import ca\nfrom network.devnet import pki\n",
     "only through gateway.core.ca"),
    ("gateway/services/x.py", "import importlib\nimportlib.import_module('chaincode.mip')\n",
     "chaincode.protocol only"),
    ("chaincode/mip/x.py", "from gateway.fabric import ready\n", "chaincode imports neither"),
    ("chaincode/shim/x.py", "import network.devnet.pki\n", "chaincode imports neither"),
    ("chaincode/mip/x.py", "from face_engine import engine\n", "chaincode imports neither"),
    ("chaincode/protocol/x.py", "from chaincode.shim import identity\n", "but itself"),
    ("chaincode/protocol/x.py", "from ..mip import passports\n", "but itself"),
    ("chaincode/protocol/x.py", "import numpy\n", "dependency-light"),
    ("network/devnet/x.py", "from gateway.services import ledger\n", "gateway.fabric.ready"),
    ("network/devnet/x.py", "from gateway.fabric import client\n", "gateway.fabric.ready"),
    ("face_engine/x.py", "from chaincode.protocol import canonical\n", "face_engine imports"),
    ("face_engine/x.py", "import gateway\n", "face_engine imports"),
    ("gateway/x.py", "from tests.gateway import test_x\n", "only tests import tests"),
    ("scripts/bench_x.py", "from shim_testkit import FakePeer\n", "only tests import tests"),
    ("network/x.py", "import shim_testkit\n", "only tests import tests"),
])
def test_a_forbidden_import_fails(tmp_path: Path, name: str, text: str, rule: str) -> None:
    root = _tree(tmp_path, {**BASE, name: text})
    found, _ = violations(root, {})
    assert len(found) == 1 and rule in found[0], found
    source = module_name(root, root / name)
    target = found[0].split(" imports ")[1].split(" (")[0]
    assert violations(root, {(source, target): "allowed here"})[0] == []
