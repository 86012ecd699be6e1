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
"""Write the flavor/aggregate namespaces and the image/flavor twins from nova.

Nova's own extra-spec validators, image object and scheduler give every
name, type, enum, range and pattern; glance_ext/metadefs/flavor_text.py
gives titles and descriptions.  Run it after upgrading nova (in an
environment with the nova release the catalog targets) and commit the JSON.
Usage: tools/generate_flavor_namespaces.py [--catalog metadefs] [--check]
"""

import argparse
import sys
import warnings

from glance_ext.metadefs import flavor_generator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="metadefs")
    parser.add_argument("--check", action="store_true",
                        help="only report whether the committed files differ")
    args = parser.parse_args()
    # nova imports eventlet, which warns on import; the tool's own output
    # is what matters here.
    warnings.filterwarnings("ignore")
    try:
        drift = flavor_generator.write(args.catalog, check_only=args.check)
    except flavor_generator.GeneratorError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    for line in drift:
        print(line, file=sys.stderr)
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
