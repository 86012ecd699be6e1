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
"""Fill os_distro's enum in metadefs/nova-guest-os.json from osinfo-db.

Nova resolves os_distro as a libosinfo short-id, so the allowed values come
from the osinfo-db data (Debian package ``osinfo-db``), not from a list
typed by hand.  Run it after an osinfo-db update and commit the JSON.
Usage: tools/generate_os_distro_ids.py [--osinfo-dir /usr/share/osinfo]
       [--catalog metadefs] [--check]
"""

import argparse
import sys

from glance_ext.metadefs import generators


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osinfo-dir", default=generators.OSINFO_DIR)
    parser.add_argument("--catalog", default="metadefs")
    parser.add_argument("--check", action="store_true",
                        help="only report whether the committed list differs")
    args = parser.parse_args()
    try:
        drift = generators.write_os_distro(args.catalog, args.osinfo_dir,
                                           check_only=args.check)
    except generators.GeneratorError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if drift:
        print(drift, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
