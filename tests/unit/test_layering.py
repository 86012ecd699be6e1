# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The package layout is the architecture: imports never cross the layers.

docs/architecture.md draws them: engines (which know nothing of Glance),
adapters (the plugins and the paste filters, the only code that talks to
Glance's internals), command-line tools, the common modules, and support
(the local Glance and the test support). This test reads every import of
every module (function-level ones too) and fails on one that goes where
the drawing says it may not.
"""

import ast
import os

import pytest

import glance_ext

ROOT = os.path.dirname(os.path.abspath(glance_ext.__file__))

# Package prefix -> layer. The longest matching prefix wins.
LAYERS = {
    "glance_ext": "common",               # the version
    "glance_ext.exceptions": "common",
    "glance_ext.common": "common",
    "glance_ext.shipped": "common",
    "glance_ext.qemu": "engine",
    "glance_ext.inspection": "engine",
    "glance_ext.conversion": "engine",
    "glance_ext.decompression": "engine",
    "glance_ext.guest": "engine",
    "glance_ext.injection": "engine",
    "glance_ext.metadefs": "engine",
    "glance_ext.cache_manager": "engine",
    "glance_ext.plugins": "adapter",
    "glance_ext.middleware": "adapter",
    "glance_ext.cmd": "cli",
    "glance_ext.local_glance": "support",
    "glance_ext.testing": "support",
}
# Importer layer -> the layers it may import.
ALLOWED = {
    "common": {"common"},
    "engine": {"common", "engine"},
    "adapter": {"common", "engine", "adapter"},
    "cli": {"common", "engine", "adapter", "cli", "support"},
    "support": {"common", "engine", "adapter", "cli", "support"},
}
# Who may import Glance's own server package ``glance``.
GLANCE_ALLOWED = {"adapter", "support"}
# Documented exceptions (docs/architecture.md): module -> why.
GLANCE_EXCEPTIONS = {
    "glance_ext.metadefs.check":
        "checks namespace files against Glance's own namespace schema (a "
        "read of the schema; no Glance state)",
}


def layer_of(module: str) -> str:
    best = max((p for p in LAYERS if module == p or
                module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _modules():
    for dirpath, _dirs, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3]
            module = rel.replace(os.sep, ".")
            if module.endswith(".__init__"):
                module = module[:-len(".__init__")]
            yield module, path


def _imports(module: str, path: str):
    with open(path) as fh:
        tree = ast.parse(fh.read(), path)
    package = module if path.endswith("__init__.py") else \
        module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module
                                          else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:       # "from glance_ext import x"
                yield "%s.%s" % (target, alias.name), node.lineno


MODULES = sorted(_modules())


def test_every_module_has_a_layer():
    assert MODULES
    for module, _path in MODULES:
        assert layer_of(module) in ALLOWED, module


@pytest.mark.parametrize("module,path", MODULES,
                         ids=[m for m, _ in MODULES])
def test_imports_stay_within_the_layers(module, path):
    mine = layer_of(module)
    problems = []
    for target, line in _imports(module, path):
        if target == "glance" or target.startswith("glance."):
            if mine not in GLANCE_ALLOWED and \
                    module not in GLANCE_EXCEPTIONS:
                problems.append("line %d imports %s: a %s module must not "
                                "import Glance" % (line, target, mine))
            continue
        if not (target == "glance_ext" or target.startswith("glance_ext.")):
            continue
        theirs = layer_of(target)
        if theirs not in ALLOWED[mine]:
            problems.append("line %d imports %s (%s) from a %s module"
                            % (line, target, theirs, mine))
    assert not problems, problems


def test_the_drawing_names_every_layer():
    with open(os.path.join(os.path.dirname(ROOT), "docs",
                           "architecture.md")) as fh:
        text = fh.read()
    for prefix in LAYERS:
        if prefix != "glance_ext":
            assert "`%s" % prefix.replace(".", "/") in text, prefix
    for module in GLANCE_EXCEPTIONS:
        assert module in text, module
