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

"""The committed sample configs in etc/ must match the option definitions.

Each generator config in etc/oslo-config-generator/ names its output file;
regenerate with `tox -e genconfig` when this fails.
"""

import configparser
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
GENERATORS = sorted(glob.glob(os.path.join(
    ROOT, "etc", "oslo-config-generator", "*.conf")))


def test_there_is_a_generator_config():
    assert GENERATORS


@pytest.mark.parametrize("generator", GENERATORS,
                         ids=[os.path.basename(g) for g in GENERATORS])
def test_committed_sample_is_current(generator, tmp_path):
    # Generator configs repeat `namespace`; only output_file is read here.
    parser = configparser.ConfigParser(strict=False)
    parser.read(generator)
    committed = os.path.join(ROOT, parser.get("DEFAULT", "output_file"))
    fresh = tmp_path / "sample.conf"
    subprocess.run([sys.executable, "-m", "oslo_config.generator",
                    "--config-file", generator, "--output-file", str(fresh)],
                   check=True, cwd=ROOT)
    with open(committed) as fh:
        expected = fh.read()
    assert fresh.read_text() == expected, (
        "%s is stale: run `tox -e genconfig` and commit the result"
        % os.path.relpath(committed, ROOT))
