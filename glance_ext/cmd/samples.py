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

"""``glance-ext samples``: the sample configs installed with glance_ext.

One sample per file an operator edits: glance-image-import.conf (the
plugins), glance-api.conf (the metadefs filter), glance-api-paste.ini
(both paste filters in a Glance 33 pipeline) and the cache manager's file.
The wheel carries them (``glance_ext.shipped``), so an operator with only
the wheel can copy them: ``glance-ext samples glance-image-import.conf``.
"""

import argparse
import sys

from glance_ext import shipped

EXIT_OK = 0
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "samples", help="list or print the installed sample configs",
        description="Without NAME: each sample config installed with "
                    "glance_ext and its path. With NAME (e.g. "
                    "glance-image-import.conf): print it, or with --path "
                    "only where it is.")
    parser.add_argument("name", nargs="?", metavar="NAME")
    parser.add_argument("--path", action="store_true",
                        help="print the path instead of the content")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if not args.name:
            directory = shipped.samples_dir()
            if args.path:
                print(directory)
                return EXIT_OK
            for name in shipped.samples():
                print("%-40s %s/%s" % (name, directory, name))
            return EXIT_OK
        path = shipped.sample_path(args.name)
    except shipped.ShippedDataMissing as exc:
        print("error: %s" % exc, file=sys.stderr)
        return EXIT_USAGE
    if args.path:
        print(path)
    else:
        with open(path) as fh:
            sys.stdout.write(fh.read())
    return EXIT_OK
