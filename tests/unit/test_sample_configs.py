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


def _our_opts():
    from importlib import metadata
    for ep in metadata.entry_points(group="oslo.config.opts"):
        if ep.name.startswith("glance_ext."):
            for group, opts in ep.load()():
                for opt in opts:
                    yield ep.name, str(group), opt


def test_every_choice_has_a_description():
    undescribed = []
    for namespace, group, opt in _our_opts():
        choices = getattr(opt.type, "choices", None) or {}
        for value, description in choices.items():
            if not description:
                undescribed.append("%s [%s] %s=%s" % (namespace, group,
                                                      opt.name, value))
    assert not undescribed, undescribed


def test_operator_samples_are_per_target_file():
    # What goes into glance-image-import.conf, glance-api.conf and the
    # cache manager's file; the development-only [local_glance] is in none.
    samples = sorted(os.path.basename(p) for p in glob.glob(
        os.path.join(ROOT, "etc", "*.sample")))
    assert samples == ["glance-api-paste.ini.sample",
                       "glance-api-uwsgi.ini.sample",
                       "glance-api.conf.sample",
                       "glance-ext-cache-manager.conf.sample",
                       "glance-image-import.conf.sample"], samples
    for name in samples:
        with open(os.path.join(ROOT, "etc", name)) as fh:
            assert "[local_glance]" not in fh.read(), name
    with open(os.path.join(ROOT, "etc", "glance-image-import.conf.sample")
              ) as fh:
        text = fh.read()
    for group in ("glance_ext_decompress", "glance_ext_validate",
                  "glance_ext_convert", "glance_ext_guest",
                  "glance_ext_inject"):
        assert "[%s]" % group in text
    assert "[glance_ext_metadefs]" not in text
