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

"""The Glance lookup against a real local glance-api.

Proves: with ``[cache_manager] glance_lookup`` the report names the Glance
image of each original (found by hashing the ids Glance lists, since the
cache name sha1(id) cannot be reversed), hidden images included; bases of
images deleted in Glance are marked and evicted before the others; and the
lookup uses nothing but the real python-glanceclient and a token.
"""

import json
import os
import subprocess
import sys

import pytest

from glance_ext.testing import cache_manager_trees as trees

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture
def glance(local_glance_factory):
    """A real local Glance via ``glance-ext local-glance up``."""
    return local_glance_factory()


def _create(glance, name, *extra):
    out = glance.glance('image-create', '--name', name, '--disk-format',
                        'raw', '--container-format', 'bare', *extra,
                        token=glance.admin_token).stdout
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 2 and cells[0] == 'id':
            return cells[1]
    raise AssertionError('no id in %s' % out)


def test_images_named_and_deleted_ones_first(glance, tmp_path):
    kept = _create(glance, 'cirros-kept')
    hidden = _create(glance, 'hidden-one', '--hidden', 'True')
    gone = _create(glance, 'deleted-later')
    glance.glance('image-delete', gone, token=glance.admin_token)

    t = trees.Tree(str(tmp_path / 'tree'))
    t.base(trees.sha1(kept), 2 * trees.DAY)
    t.base(trees.sha1(hidden), 2 * trees.DAY)
    # The deleted image's base is younger than the others: it must still
    # come first in the removal order.
    t.base(trees.sha1(gone), 1.5 * trees.DAY)
    conf = t.nova_conf(extra='[cache_manager]\nglance_lookup = True\n'
                             'glance_endpoint = %s\nglance_token = %s\n'
                       % (glance.url, glance.admin_token))
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, '-m',
                          'glance_ext.cmd.cache_manager', '--config-file',
                          conf, 'run', '--once', '--format', 'json'],
                         env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    report = json.loads(out)
    files = {f['name']: f for f in report['files']}
    assert files[trees.sha1(kept)]['image']['name'] == 'cirros-kept'
    assert files[trees.sha1(hidden)]['image']['id'] == hidden
    assert files[trees.sha1(gone)]['image'] is None
    assert files[trees.sha1(gone)]['deleted_in_glance'] is True
    assert 'deleted in Glance' in files[trees.sha1(gone)]['reason']
    assert report['quarantined'][0] == trees.sha1(gone)
    assert set(report['quarantined']) == {trees.sha1(kept),
                                          trees.sha1(hidden),
                                          trees.sha1(gone)}
