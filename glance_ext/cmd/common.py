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

"""What both command-line tools share: the OpenStack daemon options.

``glance-ext`` and ``glance-ext-cache-manager`` take ``--config-file``,
``--config-dir``, ``--log-file``, ``--log-dir``, ``--debug`` and
``--version`` the same way, and in both usual places: before the
sub-command (as ``glance-manage --config-file ... db sync``) and after it
(as ``glance-ext inspect FILE --config-file ...``). Values given in both
places add up (files) or the later one wins (the rest).

argparse gives a sub-command's values their own namespace and then copies
them over the main one, so the sub-command's copies of the options store
under ``sub_<name>`` with no default, and ``merge`` folds them in.
"""

import argparse
import os
from typing import List, Optional

from oslo_config import cfg
from oslo_log import log as logging

import glance_ext

_LISTS = ("config_file", "config_dir")
_VALUES = ("log_file", "log_dir")


def add_options(parser: argparse.ArgumentParser, *, sub: bool = False,
                config_help: str = "an oslo.config file; repeatable") -> None:
    """Add the shared options to the main parser or (``sub``) to one
    sub-command's parser."""
    def dest(name: str) -> str:
        return ("sub_" + name) if sub else name
    default = argparse.SUPPRESS if sub else None
    group = parser.add_argument_group("common options")
    group.add_argument("--config-file", dest=dest("config_file"),
                       metavar="PATH", action="append",
                       default=default if sub else [], help=config_help)
    group.add_argument("--config-dir", dest=dest("config_dir"),
                       metavar="DIR", action="append",
                       default=default if sub else [],
                       help="a directory of *.conf files read after the "
                            "config files; repeatable")
    group.add_argument("--log-file", dest=dest("log_file"), metavar="PATH",
                       default=default, help="log to this file, not stderr")
    group.add_argument("--log-dir", dest=dest("log_dir"), metavar="DIR",
                       default=default,
                       help="base directory of a relative --log-file (or "
                            "of <prog>.log when no --log-file is given)")
    group.add_argument("--debug", dest=dest("debug"), action="store_true",
                       default=default if sub else False,
                       help="log at DEBUG level")
    group.add_argument("--version", action="version",
                       version="glance_ext %s" % glance_ext.__version__)


def merge(args: argparse.Namespace) -> argparse.Namespace:
    """Fold the sub-command's copies of the shared options into the main
    ones (see the module docstring); returns ``args``."""
    for name in _LISTS:
        extra = getattr(args, "sub_" + name, None) or []
        setattr(args, name, list(getattr(args, name, None) or []) + extra)
    for name in _VALUES:
        value = getattr(args, "sub_" + name, None)
        if value is not None:
            setattr(args, name, value)
    if getattr(args, "sub_debug", False):
        args.debug = True
    for name in _LISTS + _VALUES + ("debug",):
        if hasattr(args, "sub_" + name):
            delattr(args, "sub_" + name)
    return args


def missing_config(args: argparse.Namespace) -> Optional[str]:
    """The usage error for a config file or directory that is not there."""
    for path in args.config_file:
        if not os.path.isfile(path):
            return "config file %s not found" % path
    for path in args.config_dir:
        if not os.path.isdir(path):
            return "config directory %s not found" % path
    return None


def _log_args(args: argparse.Namespace) -> List[str]:
    out: List[str] = []
    if args.log_file:
        out += ["--log-file", args.log_file]
    if args.log_dir:
        out += ["--log-dir", args.log_dir]
    if args.debug:
        out.append("--debug")
    return out


def oslo_args(args: argparse.Namespace) -> List[str]:
    """The shared options as oslo.config command-line arguments."""
    out: List[str] = []
    for path in args.config_file:
        out += ["--config-file", path]
    for path in args.config_dir:
        out += ["--config-dir", path]
    return out + _log_args(args)


def wants_logging(args: argparse.Namespace) -> bool:
    return bool(args.debug or args.log_file or args.log_dir)


def setup_logging(args: argparse.Namespace, prog: str) -> None:
    """oslo.log from the command line only (for ``glance-ext``, whose
    config files are Glance's: their logging options are glance-api's, not
    this command's). Logs go to stderr unless a file is named: stdout
    carries the command's output."""
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    conf.set_default("use_stderr", True)
    conf(args=_log_args(args), project="glance-ext", prog=prog,
         default_config_files=[], default_config_dirs=[])
    if args.log_dir and not args.log_file:
        conf.set_override("log_file", prog + ".log")
    logging.setup(conf, prog)
