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

"""The ``glance-ext`` command: one entry point, one sub-command per tool.

Each sub-command lives in its own module under ``glance_ext.cmd`` and
exposes ``register(subparsers)``, which adds its parser and sets ``func``
(a callable taking the parsed namespace and returning the exit status).
Keeping the list here, rather than discovering modules, makes the set of
commands explicit and keeps start-up free of imports a command does not need.
"""

import argparse
import importlib
import sys
from typing import Optional, Sequence

import glance_ext

# Module paths of the sub-commands, in the order ``--help`` lists them.
SUBCOMMANDS = (
    "glance_ext.cmd.local_glance",
    "glance_ext.cmd.inspect",
    "glance_ext.cmd.metadefs",
    "glance_ext.cmd.convert",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glance-ext",
        description="Tools of glance_ext: a local Glance, image inspection "
                    "and conversion, metadefs.")
    parser.add_argument("--version", action="version",
                        version="glance_ext %s" % glance_ext.__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for path in SUBCOMMANDS:
        importlib.import_module(path).register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
