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

"""``glance-ext convert SOURCE OUTPUT``: the convert plugin, offline.

Runs the same engine as the ``glance_ext_convert`` import plugin: the
source is inspected by the validate engine, the target format is chosen by
the same rules (``--for-store`` uses ``store_formats``), the output is
measured against free space, converted with the tuned and bounded
qemu-img, and verified. Operators use it to check what an import would
produce, or to prepare images before uploading them. Exit status: 0 done
(or nothing to do), 1 refused or failed, 2 usage error.
"""

import argparse
import json
import logging
import os
import sys
from typing import List, Optional, Sequence

from oslo_config import cfg

from glance_ext import exceptions
from glance_ext.cmd import common
from glance_ext.common import sizes
from glance_ext.conversion import engine as engine_mod
from glance_ext.conversion import options
from glance_ext.conversion import progress as progress_mod
from glance_ext.conversion.settings import Settings
from glance_ext.conversion import slots
from glance_ext.conversion import target as target_mod
from glance_ext.inspection import options as validate_options
from glance_ext.inspection import policy as policy_mod

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert a disk image as the convert plugin would",
        description="Inspect SOURCE, choose the target format (--to, or the "
                    "format [%s] gives --for-store), check free space, "
                    "convert with qemu-img under limits and verify OUTPUT. "
                    "Exit status 0 done, 1 refused or failed, 2 usage error."
                    % options.GROUP)
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("output", metavar="OUTPUT")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--to", metavar="FORMAT",
                       choices=options.OUTPUT_FORMATS,
                       help="target disk_format: %s"
                            % ", ".join(options.OUTPUT_FORMATS))
    which.add_argument("--for-store", metavar="ID", action="append",
                       default=[],
                       help="choose the format the plugin would choose for "
                            "an import to this store id; repeatable")
    parser.add_argument("--claimed-format", metavar="F",
                        help="the disk_format the image is claimed to be "
                             "(default: accept what is detected)")
    parser.add_argument("--compare", action="store_true",
                        help="also run qemu-img compare on the result")
    parser.add_argument("--lock-dir", metavar="DIR",
                        help="share the conversion slots of this directory "
                             "(default: lock_dir, or next to OUTPUT)")
    parser.add_argument("--progress", choices=("auto", "always", "never"),
                        default="auto",
                        help="progress bar on stderr (auto: on a terminal)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        dest="output_format", help="result output format")
    parser.set_defaults(func=run)


def load(config_files: List[str], overrides: dict,
         config_dirs: Sequence[str] = ()):
    """Settings and policy from Glance's config files (``[%s]`` and
    ``[%s]`` of glance-image-import.conf)."""
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    validate_options.register_opts(conf)
    conf(args=[], project="glance", default_config_files=config_files,
         default_config_dirs=list(config_dirs))
    return (Settings.from_conf(conf, overrides),
            policy_mod.Policy.from_conf(conf))


def _usage(message: str) -> int:
    print("glance-ext convert: error: %s" % message, file=sys.stderr)
    return EXIT_USAGE


def _fail(message: str) -> int:
    print("glance-ext convert: %s" % message, file=sys.stderr)
    return EXIT_FAILED


class Bar:
    """A one-line progress bar for terminals; a line per 10% otherwise."""

    def __init__(self, stream, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self._last_decile = -1

    def __call__(self, p: progress_mod.Progress) -> None:
        text = "%s %5.1f%% (%s of %s)" % (
            p.phase, p.percent, sizes.human(p.done_bytes),
            sizes.human(p.total_bytes))
        if self.tty:
            width = 30
            filled = int(width * p.percent / 100)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write("\r[%s] %s" % (bar, text))
            self.stream.flush()
        else:
            decile = int(p.percent // 10)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(text + "\n")

    def waiting(self, wait: slots.Wait) -> None:
        seconds = int(wait.seconds)
        if seconds % 10 == 0 and seconds != getattr(self, "_last_wait", -1):
            self._last_wait = seconds
            self.stream.write("waiting for a conversion slot (%s; %ds)%s"
                              % (wait.text, seconds,
                                 "\r" if self.tty else "\n"))

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    if not common.wants_logging(args):
        logging.getLogger().addHandler(logging.NullHandler())
    if not os.path.isfile(args.source):
        return _usage("%s is not a readable file" % args.source)
    if os.path.exists(args.output):
        return _usage("%s exists; remove it or choose another OUTPUT"
                      % args.output)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        return _usage("directory %s does not exist" % out_dir)
    overrides = {}
    if args.compare:
        overrides["compare"] = True
    if args.lock_dir:
        overrides["lock_dir"] = args.lock_dir
    if args.progress != "never":
        # A bar wants more than the task message's update rate.
        overrides["progress_interval_seconds"] = 0.5
    try:
        settings, policy = load(args.config_file, overrides,
                                args.config_dir)
    except (exceptions.ConfigurationError, cfg.Error) as exc:
        return _usage(str(exc))
    engine = engine_mod.ConversionEngine(settings, policy)
    try:
        report = engine.inspect_source(args.source, args.claimed_format,
                                       "bare")
    except exceptions.ImageRefused as exc:
        return _fail("source refused by inspection: %s" % exc)
    except exceptions.ToolUnavailable as exc:
        return _usage("cannot run qemu-img: %s" % exc)
    except OSError as exc:
        return _usage("cannot read %s: %s" % (args.source, exc.strerror))
    detected = report.detected_format
    choice = Settings(default_format=args.to, source_format_rules=()) \
        if args.to else settings
    try:
        decision = target_mod.decide(choice, detected,
                                     [] if args.to else args.for_store,
                                     args.source,
                                     report.disk_format or detected)
    except exceptions.TargetError as exc:
        return _fail(str(exc))
    result = {"source": args.source, "source_format": detected,
              "decision": decision.reason}
    if not decision.convert:
        result["converted"] = False
        _print(args, result, "nothing to do: %s; %s not written"
               % (decision.reason, args.output))
        return EXIT_OK
    show = args.progress == "always" or (
        args.progress == "auto" and sys.stderr.isatty())
    bar = Bar(sys.stderr, sys.stderr.isatty()) if show else None
    try:
        outcome = engine.convert(
            args.source, detected, args.output, decision.target_format,
            on_progress=bar, on_wait=bar.waiting if bar else None)
    except exceptions.ToolUnavailable as exc:
        # The host or the deployment (a tool, the coordination backend of
        # the cluster-wide cap), never the image: exit 2, as for usage.
        if bar:
            bar.done()
        return _usage("cannot convert on this host: %s" % exc)
    except exceptions.GlanceExtError as exc:
        if bar:
            bar.done()
        return _fail("conversion refused or failed: %s" % exc)
    if bar:
        bar.done()
    result.update(outcome.to_dict())
    result["converted"] = True
    _print(args, result, _text(outcome))
    return EXIT_OK


def _print(args: argparse.Namespace, result: dict, text: str) -> None:
    if args.output_format == "json":
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(text)


def _text(o: engine_mod.Outcome) -> str:
    def row(label: str, value: Optional[object]) -> str:
        return "%-18s %s" % (label + ":", value)

    return "\n".join([
        row("converted", "%s -> %s" % (o.source_format, o.target_format)),
        row("output", o.output_path),
        row("virtual size", o.virtual_size),
        row("output size", "%d (%s)" % (o.size, sizes.human(o.size))),
        row("measured need", o.required_bytes),
        row("cache mode", o.cache_mode),
        row("convert time", "%.2fs" % o.convert_seconds),
        row("slot wait", "%.2fs" % o.waited_seconds),
        row("compared", "yes" if o.compared else "no")])
