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

from glance_ext.cmd import common

# Module paths of the sub-commands, in the order ``--help`` lists them.
SUBCOMMANDS = (
    "glance_ext.cmd.local_glance",
    "glance_ext.cmd.inspect",
    "glance_ext.cmd.metadefs",
    "glance_ext.cmd.convert",
    "glance_ext.cmd.samples",
    "glance_ext.cmd.paste_config",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


CONFIG_HELP = ("a config file (for inspect and convert Glance's "
               "glance-image-import.conf; for local-glance one with a "
               "[local_glance] section); repeatable")


def _add_common(parser: argparse.ArgumentParser) -> None:
    """The shared options on every sub-command, nested ones included."""
    common.add_options(parser, sub=True, config_help=CONFIG_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_common(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glance-ext",
        description="Tools of glance_ext: a local Glance, image inspection "
                    "and conversion, metadefs, sample configs.")
    common.add_options(parser, config_help=CONFIG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for path in SUBCOMMANDS:
        importlib.import_module(path).register(subparsers)
    for child in subparsers.choices.values():
        _add_common(child)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = common.merge(parser.parse_args(argv))
    problem = common.missing_config(args)
    if problem:
        print("glance-ext: error: %s" % problem, file=sys.stderr)
        return EXIT_USAGE
    if common.wants_logging(args):
        common.setup_logging(args, "glance-ext")
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
