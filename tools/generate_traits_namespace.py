#!/usr/bin/env python3
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
"""Write metadefs/nova-traits.json: one ``trait:`` property per os-traits trait.

Run it after upgrading os-traits and commit the JSON.
Usage: tools/generate_traits_namespace.py [--catalog metadefs] [--check]
"""

import argparse
import sys

from glance_ext.metadefs import generators


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="metadefs")
    parser.add_argument("--check", action="store_true",
                        help="only report whether the committed file differs")
    args = parser.parse_args()
    try:
        drift = generators.write_traits(args.catalog, check_only=args.check)
    except generators.GeneratorError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if drift:
        print(drift, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
