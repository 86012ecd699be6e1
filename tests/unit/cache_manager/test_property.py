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

"""Property: nothing any disk chain references is ever removed.

Random trees (real qemu-img disks, random instance directories, disk kinds,
overlays, relative names, random ages and policies); after a pass every
referenced base is still in the cache, nothing else is lost (whatever left
the cache is in quarantine), and the removals are exactly the unreferenced,
old-enough, nova-named files.
"""

import os
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from glance_ext.cache_manager import cachepass, naming
from glance_ext.testing import cache_manager_trees as trees
from glance_ext.testing.cache_manager_trees import make_conf

SHAS = [trees.sha1('img-%d' % i) for i in range(6)]
NAMES = (SHAS + [s + '_10' for s in SHAS[:3]] + [SHAS[0] + '_sm']
         + ['swap_512', 'swap_1024', 'ephemeral_1_0706d66',
            'ephemeral_2_0706d66', SHAS[1] + '.part', 'README',
            'f' * 40 + '_zz'])
AGES = (10, 5000, 200000)          # far from every threshold below
INSTANCES = ('i1', 'i2', 'i2_resize', 'i3_del', 'instance-0000000a')
DISKS = ('disk', 'disk.local', 'disk.eph1', 'disk.swap', 'disk.rescue')

disk_st = st.tuples(st.sampled_from(INSTANCES), st.sampled_from(DISKS),
                    st.sampled_from(NAMES[:-2]), st.booleans(),
                    st.booleans())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(bases=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(AGES),
                             max_size=len(NAMES)),
       disks=st.lists(disk_st, max_size=8),
       original_age=st.sampled_from((3600, 86400)),
       resized_age=st.sampled_from((60, 86400)),
       age_source=st.sampled_from(('mtime', 'unused_since')))
def test_referenced_bases_are_never_removed(bases, disks, original_age,
                                            resized_age, age_source):
    root = tempfile.mkdtemp(prefix='cm-prop-')
    try:
        t = trees.Tree(root)
        for name, age in bases.items():
            t.base(name, age)
        # Oracle: what each file on disk points at, last write wins (a
        # later draw may overwrite a disk; an overlay file stays).
        points_at = {}
        for inst, disk, backing, relative, overlay in disks:
            if overlay:
                mid = t.disk(inst, disk + '.ovl', backing, relative=relative)
                t.disk(inst, disk, mid)
                points_at[(inst, disk + '.ovl')] = backing
                points_at[(inst, disk)] = None
            else:
                t.disk(inst, disk, backing, relative=relative)
                points_at[(inst, disk)] = backing
        referenced = {b for b in points_at.values() if b}
        before = t.listing()
        conf = make_conf(
            t,
            image_cache__remove_unused_original_minimum_age_seconds=(
                original_age),
            image_cache__remove_unused_resized_minimum_age_seconds=(
                resized_age),
            cache_manager__age_source=age_source)
        cachepass.CachePass(conf).run()
        after = t.listing()
        qdir = os.path.join(t.instances, 'glance-ext-cache-manager',
                            'quarantine')
        quarantined = {n for n in os.listdir(qdir)
                       if not n.endswith('.json')}
        assert referenced & before <= after
        assert before - after == quarantined - after
        expected = set()
        for name in before:
            kind = naming.classify(name).kind
            if kind == naming.BaseClass.UNKNOWN or name in referenced:
                continue
            if kind in naming.LEFTOVER_CLASSES:
                limit, age = 86400, bases[name]
            else:
                if age_source == 'unused_since':
                    continue          # first sight: the clock starts now
                limit = resized_age if kind in (
                    naming.BaseClass.RESIZED,
                    naming.BaseClass.RESIZED_LEGACY) else original_age
                age = bases[name]
            if age >= limit:
                expected.add(name)
        assert before - after == expected
    finally:
        shutil.rmtree(root)
