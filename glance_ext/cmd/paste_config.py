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

"""``glance-ext paste-config``: add glance_ext's filters to a paste file.

Reads an existing glance-api-paste.ini and writes it with
``glance_ext_metadefs`` and ``glance_ext_recovery`` in every pipeline (see
``glance_ext.middleware.paste_config``); the committed sample
``etc/glance-api-paste.ini.sample`` is this command's output on Glance's
own file.
"""

import argparse
import os
import sys

from glance_ext.middleware import paste_config

EXIT_OK = 0
EXIT_USAGE = 2
HEADER = ("# glance-api-paste.ini with the glance_ext filters added by\n"
          "# `glance-ext paste-config` (input: %s).\n"
          "# glance_ext_metadefs enforces the metadefs catalog on image\n"
          "# writes (after the context filter); glance_ext_recovery reverts\n"
          "# imports a stop or crash interrupted when glance-api starts.\n\n")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "paste-config", help="add the glance_ext filters to a paste file",
        description="Write INPUT (a glance-api-paste.ini) with the "
                    "glance_ext paste filters in every pipeline of it: the "
                    "metadefs enforcement after Glance's context filter and "
                    "the start-up recovery before the application. Running "
                    "it on its own output changes nothing.")
    parser.add_argument("input", metavar="INPUT",
                        help="the paste file, e.g. "
                             "/etc/glance/glance-api-paste.ini")
    parser.add_argument("-o", "--output", default="-",
                        help="where to write (default: standard output)")
    parser.add_argument("--filters", default="metadefs,copy-image,recovery",
                        help="comma-separated: metadefs, copy-image, "
                             "recovery")
    parser.set_defaults(func=run)


def render(text: str, source: str, wanted) -> str:
    """The edited paste file with a header naming where it came from."""
    edited, _edit = paste_config.add_filters(text, wanted)
    if edited.startswith("# glance-api-paste.ini with the glance_ext"):
        return edited                      # already ours: unchanged
    return HEADER % source + edited


def run(args: argparse.Namespace) -> int:
    names = {"metadefs": paste_config.METADEFS,
             "copy-image": paste_config.COPY_IMAGE,
             "recovery": paste_config.RECOVERY}
    chosen = [f.strip() for f in args.filters.split(",") if f.strip()]
    unknown = sorted(set(chosen) - set(names))
    if unknown or not chosen:
        print("error: --filters takes metadefs, copy-image and/or recovery, not %s"
              % ", ".join(unknown or ["nothing"]), file=sys.stderr)
        return EXIT_USAGE
    try:
        with open(args.input) as fh:
            text = fh.read()
        out = render(text, os.path.basename(args.input),
                     [names[c] for c in chosen])
    except OSError as exc:
        print("error: cannot read %s: %s" % (args.input, exc.strerror),
              file=sys.stderr)
        return EXIT_USAGE
    except paste_config.PasteConfigError as exc:
        print("error: %s: %s" % (args.input, exc), file=sys.stderr)
        return EXIT_USAGE
    if args.output == "-":
        sys.stdout.write(out)
    else:
        with open(args.output, "w") as fh:
            fh.write(out)
    return EXIT_OK
