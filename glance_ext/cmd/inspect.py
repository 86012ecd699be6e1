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

"""``glance-ext inspect FILE``: the validate plugin's verdict, before upload.

Operators run it on an image to learn what Glance's validate step will say
(same engine, same options when given the same config file) without staging
anything; ``--sbom OUT.json`` also writes the guest's CycloneDX SBOM, the
same document the inject plugin stores in ``sbom_dir``. Exit status: 0
accepted, 1 rejected, 2 usage error, 3 accepted but no SBOM could be made.
"""

import argparse
import json
import logging
import os
import sys
from typing import List, Optional, Sequence

from oslo_config import cfg

from glance_ext import exceptions
from glance_ext import guest as guest_mod
from glance_ext.cmd import common
from glance_ext.inspection import engine as engine_mod
from glance_ext.inspection import options
from glance_ext.inspection import policy as policy_mod
from glance_ext.inspection.report import Report

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_NO_SBOM = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="inspect a disk image as the validate plugin would",
        description="Detect the real format of FILE, run the safety checks "
                    "and the operator policy of [%s], and print the verdict. "
                    "Exit status 0 accepted, 1 rejected, 2 usage error, 3 "
                    "accepted but no SBOM could be made (--sbom)."
                    % options.GROUP)
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        dest="output_format", help="output format")
    parser.add_argument("--claimed-format", metavar="F",
                        help="the disk_format the image would be uploaded "
                             "with (default: accept what is detected)")
    parser.add_argument("--container-format", metavar="C", default="bare")
    parser.add_argument("--property", metavar="KEY=VALUE", action="append",
                        default=[], help="an image property (for "
                                         "require_signature); repeatable")
    parser.add_argument("--no-guest", action="store_false", dest="guest",
                        help="skip the look inside the guest (OS, "
                             "architecture, firmware, Image Guide checks) "
                             "that follows an accepted verdict")
    parser.add_argument("--sbom", metavar="OUT.json",
                        help="write the guest's installed packages as a "
                             "CycloneDX 1.6 JSON SBOM (with package URLs) "
                             "to this file")
    parser.set_defaults(func=run)


def load_policy(config_files: List[str],
                config_dirs: Sequence[str] = ()) -> policy_mod.Policy:
    """The policy of ``[glance_ext_validate]`` in Glance's config files
    (``--config-file``/``--config-dir``, e.g. glance-image-import.conf)."""
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf(args=[], project="glance", default_config_files=config_files,
         default_config_dirs=list(config_dirs))
    return policy_mod.Policy.from_conf(conf)


def _usage(message: str) -> int:
    print("glance-ext inspect: error: %s" % message, file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    if not common.wants_logging(args):
        # The verdict is the output; library warnings would repeat it.
        logging.getLogger().addHandler(logging.NullHandler())
    if not os.path.isfile(args.file):
        return _usage("%s is not a readable file" % args.file)
    if args.sbom and not args.guest:
        return _usage("--sbom needs the look inside the guest; drop "
                      "--no-guest")
    if args.sbom and not os.path.isdir(os.path.dirname(
            os.path.abspath(args.sbom))):
        return _usage("the directory of --sbom %s does not exist"
                      % args.sbom)
    if args.claimed_format and \
            args.claimed_format not in policy_mod.KNOWN_FORMATS | {
                "ami", "aki", "ari", "ploop"}:
        return _usage("unknown --claimed-format %r" % args.claimed_format)
    props = {}
    for item in args.property:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return _usage("--property wants KEY=VALUE, got %r" % item)
        props[key] = value
    try:
        policy = load_policy(args.config_file, args.config_dir)
    except (policy_mod.PolicyError, cfg.Error) as exc:
        return _usage(str(exc))
    try:
        report = engine_mod.Engine(policy).inspect(
            args.file, args.claimed_format, args.container_format, props)
    except exceptions.ToolUnavailable as exc:
        return _usage("cannot run qemu-img: %s" % exc)
    except OSError as exc:
        return _usage("cannot read %s: %s" % (args.file, exc.strerror))
    guest = None
    if args.guest and report.accepted and \
            report.disk_format in guest_mod.SUPPORTED_FORMATS:
        # Only an image validate accepted is handed to the guest engine.
        guest = guest_mod.inspect_guest(args.file, report.disk_format)
    sbom_line, sbom_failed = None, False
    if args.sbom and report.accepted:
        sbom_line, sbom_failed = _write_sbom(guest, args.sbom)
    if args.output_format == "json":
        data = report.to_dict()
        if guest is not None:
            data["guest"] = guest.to_dict()
        if sbom_line:
            data["sbom"] = sbom_line
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(format_text(report))
        if guest is not None:
            print("guest:\n" + guest.format_text())
        if sbom_line and not sbom_failed:
            print("sbom:              %s" % sbom_line)
    if sbom_failed:
        print("glance-ext inspect: no SBOM written: %s" % sbom_line,
              file=sys.stderr)
        return EXIT_NO_SBOM
    return EXIT_ACCEPTED if report.accepted else EXIT_REJECTED


def _write_sbom(guest, path: str):
    """(message, failed) after writing the SBOM of ``guest`` to ``path``."""
    from glance_ext.guest import sbom as sbom_mod
    if guest is None:
        return ("the image's format cannot be inspected inside", True)
    try:
        text = sbom_mod.to_json(sbom_mod.build(guest))
    except sbom_mod.SbomError as exc:
        return (str(exc), True)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        return ("cannot write %s: %s" % (path, exc.strerror), True)
    return ("%s (CycloneDX %s, %d packages, sha256 %s)"
            % (path, sbom_mod.SCHEMA.to_version(), len(guest.packages),
               sbom_mod.sha256(text)), False)


def format_text(report: Report) -> str:
    def row(label: str, value: Optional[object]) -> str:
        return "%-16s %s" % (label + ":", "-" if value is None else value)

    lines = [row("verdict", report.verdict),
             row("detected format", report.detected_format),
             row("claimed format", report.claimed_format),
             row("qemu probe", report.qemu_probe),
             row("store as", report.disk_format),
             row("virtual size", report.virtual_size),
             row("file size", report.file_size),
             row("nested format", report.nested_format),
             row("bytes read", report.bytes_read),
             row("qemu-img ran", "yes" if report.qemu_ran else "no"),
             row("engine", report.engine_version)]
    if report.rejections:
        lines.append("reasons:")
        lines += ["  - [%s] %s" % (f.code, f.message)
                  for f in report.rejections]
    if report.warnings:
        lines.append("warnings:")
        lines += ["  - [%s] %s" % (f.code, f.message)
                  for f in report.warnings]
    return "\n".join(lines)
