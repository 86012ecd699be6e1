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

"""``glance-ext metadefs check|coverage|schema-image|validate-properties``.

The catalog is only useful if it is exact, so these commands are how an
operator (and CI) keeps it so: ``check`` finds what Glance's loader would
silently accept, ``coverage`` compares it with the installed nova,
``schema-image`` turns it into Glance's own start-up enforcement, and
``validate-properties`` answers "would this image be accepted?" offline.
"""

import argparse
import json
import sys
import warnings
from typing import List, Tuple

from glance_ext import exceptions
from glance_ext.metadefs import catalog as catalog_mod

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metadefs", help="check, measure and apply the metadefs catalog",
        description="Tools for the metadefs catalog (default catalog: the "
                    "metadefs/ directory of glance_ext).")
    sub = parser.add_subparsers(dest="metadefs_command", metavar="ACTION")
    sub.required = True
    # None means the shipped catalog, resolved when a command runs (a
    # missing catalog must not break ``--help`` of every other command).
    default_dir = None

    path = sub.add_parser(
        "path", help="print where the shipped catalog is installed",
        description="Print the directory of the metadefs catalog that ships "
                    "with glance_ext, for example for `glance-manage db "
                    "load_metadefs --path \"$(glance-ext metadefs path)\"`.")
    path.set_defaults(func=run_path)

    check = sub.add_parser(
        "check", help="schema, titles, duplicates and conflicts",
        description="Check namespace files against Glance's namespace "
                    "schema and the rules Glance's loader does not enforce.")
    check.add_argument("directory", nargs="?", default=default_dir)
    check.add_argument("--quiet", action="store_true",
                       help="print errors only, no warnings or summary")
    check.set_defaults(func=run_check)

    coverage = sub.add_parser(
        "coverage", help="compare the catalog with the installed nova",
        description="Feed every allowed value (and a sample of forbidden "
                    "ones) through nova's ImageMetaProps.from_dict(), its "
                    "flavor extra-spec validators and the scheduler code "
                    "reading aggregate metadata. Exits 1 unless every nova "
                    "field and extra spec is covered or excluded with a "
                    "reason and nothing differs.")
    coverage.add_argument("--catalog", default=default_dir)
    coverage.add_argument("--format", choices=["text", "json"],
                          default="text")
    coverage.add_argument("--verbose", action="store_true",
                          help="text: also list covered fields")
    coverage.set_defaults(func=run_coverage)

    schema = sub.add_parser(
        "schema-image", help="write Glance's schema-image.json",
        description="Write schema-image.json for Glance's config directory "
                    "(Glance enforces it on image create/update; it reads "
                    "it at start-up only).")
    schema.add_argument("directory", nargs="?", default=default_dir,
                        help="catalog directory")
    schema.add_argument("--output", "-o", default="schema-image.json")
    schema.add_argument("--enforce-all", action="store_true",
                        help="also constrain advisory properties (os_distro)")
    schema.add_argument("--exclude-prefix", action="append", default=[],
                        metavar="PREFIX",
                        help="leave out keys starting with PREFIX, e.g. "
                             "trait: (Glance's validation cost grows with "
                             "the number of keys; see docs/metadefs.md)")
    schema.set_defaults(func=run_schema_image)

    validate = sub.add_parser(
        "validate-properties", help="check key=value image properties",
        description="Check image properties against the catalog as the API "
                    "filter would. Exit 1 if any is refused.")
    validate.add_argument("properties", nargs="+", metavar="KEY=VALUE")
    validate.add_argument("--catalog", default=default_dir)
    validate.add_argument("--enforce-all", action="store_true",
                          help="refuse advisory properties too (os_distro)")
    validate.set_defaults(func=run_validate_properties)


def _quiet_imports() -> None:
    # glance and nova import eventlet, which prints a deprecation warning
    # that buries the command's own output.
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")


def _directory(value: str) -> str:
    return value or catalog_mod.default_directory()


def run_path(args: argparse.Namespace) -> int:
    try:
        print(catalog_mod.default_directory())
    except catalog_mod.CatalogError as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    _quiet_imports()
    from glance_ext.metadefs import check
    try:
        args.directory = _directory(args.directory)
        problems = check.check_directory(args.directory)
    except (catalog_mod.CatalogError, exceptions.ToolUnavailable) as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    errors = [p for p in problems if p.severity == check.ERROR]
    for problem in problems:
        if problem.severity == check.ERROR or not args.quiet:
            print(problem)
    if not args.quiet:
        warned = len(problems) - len(errors)
        print("%d namespace files in %s: %d errors, %d warnings"
              % (len(catalog_mod.catalog_files(args.directory)),
                 args.directory, len(errors), warned))
    return EXIT_FAILED if errors else EXIT_OK


def run_coverage(args: argparse.Namespace) -> int:
    _quiet_imports()
    from glance_ext.metadefs import coverage
    try:
        catalog = catalog_mod.load_directory(_directory(args.catalog))
        report = coverage.run(catalog)
    except catalog_mod.CatalogError as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except coverage.NovaUnavailable as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        json.dump(report.as_dict(), sys.stdout, indent=2)
        print()
    else:
        for result in report.results:
            if result.ok and not args.verbose:
                continue
            where = " [%s]" % result.namespace if result.namespace else ""
            print("%-8s %-9s %s%s" % (result.kind, result.status,
                                      result.name, where))
            for line in result.detail:
                print("           %s" % line)
        bad = [r for r in report.results if not r.ok]
        checked = sum(r.checked for r in report.results)
        flavor = report.flavor_summary()
        print("nova %s flavor extra specs: %d validators (%d deprecated): "
              "%d described, %d excluded; %d image/flavor twins; %d "
              "aggregate keys (%d aggregate filters excluded)"
              % (report.nova_version, flavor["validators"],
                 flavor["deprecated"], flavor["described"],
                 flavor["excluded"], flavor["twins"],
                 flavor["aggregate_keys"],
                 flavor["aggregate_filters_excluded"]))
        print("nova %s (ImageMetaProps %s): covered %d/%d fields "
              "(%d excluded), %d values fed to nova, %d problems"
              % (report.nova_version, report.object_version, report.covered,
                 report.total, sum(1 for r in report.fields()
                                   if r.status == "excluded"),
                 checked, len(bad)))
    return EXIT_OK if report.ok else EXIT_FAILED


def run_schema_image(args: argparse.Namespace) -> int:
    from glance_ext.metadefs import rules as rules_mod
    from glance_ext.metadefs import schema_image
    advisory = () if args.enforce_all else rules_mod.DEFAULT_ADVISORY
    try:
        catalog = catalog_mod.load_directory(_directory(args.directory))
        count = schema_image.write(catalog, args.output, advisory,
                                   args.exclude_prefix)
    except catalog_mod.CatalogError as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print("error: cannot write %s: %s" % (args.output, e.strerror),
              file=sys.stderr)
        return EXIT_USAGE
    print("wrote %s: %d image properties; copy it to Glance's config "
          "directory (next to glance-api.conf) and restart glance-api"
          % (args.output, count))
    return EXIT_OK


def _parse_pairs(items: List[str]) -> List[Tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError("%r is not KEY=VALUE (e.g. hw_disk_bus=virtio)"
                             % item)
        pairs.append((key, value))
    return pairs


def run_validate_properties(args: argparse.Namespace) -> int:
    from glance_ext.metadefs import rules as rules_mod
    try:
        pairs = _parse_pairs(args.properties)
        ruleset = rules_mod.compile_rules(
            catalog_mod.load_directory(_directory(args.catalog)),
            advisory=() if args.enforce_all else rules_mod.DEFAULT_ADVISORY)
    except (ValueError, catalog_mod.CatalogError) as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    refused = 0
    for key, value in pairs:
        rule = ruleset.rule_for(key)
        violation = ruleset.check(key, value)
        if violation is not None and violation.advisory:
            print("WARNING %s (advisory: accepted)" % violation.message)
        elif violation is not None:
            refused += 1
            print("INVALID %s" % violation.message)
        elif rule is None:
            print("unknown %s=%s (not in the catalog; passes, nova ignores "
                  "keys it does not know)" % (key, value))
        elif rule.readonly:
            print("ok      %s=%s (read-only: written by nova)" % (key, value))
        else:
            print("ok      %s=%s (%s: %s)" % (key, value, rule.namespace,
                                              rule.allowed_text()))
    return EXIT_FAILED if refused else EXIT_OK
