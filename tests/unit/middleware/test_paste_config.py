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


"""``glance-ext paste-config`` edits every pipeline of a real paste file.

Glance 33's glance-api-paste.ini (as installed with glance) holds one
pipeline per deployment flavor inside the composite ``api``; each must get
the metadefs filter after Glance's context filter and the recovery filter
before the application, and the committed sample must be exactly the
command's output on Glance's own file.
"""

import configparser
import os
import sys

import pytest

from glance_ext.cmd import main
from glance_ext.middleware import paste_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
GLANCE_PASTE = os.path.join(sys.prefix, "etc", "glance",
                            "glance-api-paste.ini")
SAMPLE = os.path.join(ROOT, "etc", "glance-api-paste.ini.sample")


def _pipelines(text):
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str
    parser.read_string(text)
    return {(s, k): parser.get(s, k).split()
            for s, k in paste_config._pipeline_keys(parser)}, parser


def test_committed_sample_is_glance_33_file_edited(tmp_path, capsys):
    assert os.path.isfile(GLANCE_PASTE), "glance's paste file not installed"
    out = tmp_path / "paste.ini"
    assert main.main(["paste-config", GLANCE_PASTE, "-o", str(out)]) == 0
    with open(SAMPLE) as fh:
        assert out.read_text() == fh.read(), (
            "etc/glance-api-paste.ini.sample is stale: regenerate it with "
            "`glance-ext paste-config %s -o %s`" % (GLANCE_PASTE, SAMPLE))


def test_every_flavor_pipeline_gets_both_filters_in_place():
    with open(GLANCE_PASTE) as fh:
        original, _ = _pipelines(fh.read())
    with open(SAMPLE) as fh:
        edited, parser = _pipelines(fh.read())
    assert set(edited) == set(original)
    assert len(edited) >= 6          # default, caching, keystone ...
    for key, names in edited.items():
        ctx = max(i for i, n in enumerate(names)
                  if n in paste_config.CONTEXT_FILTERS)
        assert names[ctx + 1] == paste_config.METADEFS, key
        assert names[-2:] == [paste_config.RECOVERY, original[key][-1]]
        assert [n for n in names if not n.startswith("glance_ext_")] == \
            original[key]
    for name, factory in paste_config.FACTORIES.items():
        assert parser.get("filter:" + name,
                          "paste.filter_factory") == factory


def test_running_it_twice_changes_nothing():
    with open(SAMPLE) as fh:
        text = fh.read()
    again, edit = paste_config.add_filters(text)
    assert again == text
    assert edit.added_sections == ()


def test_pipeline_sections_and_continuation_lines():
    text = ("[pipeline:glance-api]\n"
            "pipeline = versionnegotiation\n"
            "    context rootapp\n"
            "# a comment stays\n"
            "[filter:context]\n"
            "paste.filter_factory = x:y\n")
    edited, edit = paste_config.add_filters(text)
    assert ("pipeline = versionnegotiation context glance_ext_metadefs "
            "glance_ext_copy_image glance_ext_recovery rootapp") in edited
    assert "# a comment stays" in edited
    assert edit.pipelines == (("pipeline:glance-api", "pipeline"),)
    assert "    context rootapp" not in edited


def test_only_the_recovery_filter():
    edited, _ = paste_config.add_filters(
        "[pipeline:main]\npipeline = context rootapp\n",
        [paste_config.RECOVERY])
    assert "pipeline = context glance_ext_recovery rootapp" in edited
    assert "glance_ext_metadefs" not in edited


def test_a_file_without_pipelines_is_refused(tmp_path, capsys):
    path = tmp_path / "glance-api.conf"
    path.write_text("[DEFAULT]\ndebug = true\n")
    assert main.main(["paste-config", str(path)]) == 2
    assert "no pipeline found" in capsys.readouterr().err
    with pytest.raises(paste_config.PasteConfigError):
        paste_config.add_filters("not an ini file")
