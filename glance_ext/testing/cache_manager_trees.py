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

"""Builds nova instance trees for the cache manager's tests and benchmark.

Everything is made the way nova makes it: raw base files in ``_base`` named
by nova's rules, and instance disks made by the real ``qemu-img create -b``
(``-u`` so the base need not be opened, which also lets a disk name a base
that is missing). Nothing is committed: trees are built under a tmp dir at
test time.

Run as a script to build a demo tree:
    python tests/cache_manager_trees.py /tmp/demo-tree
"""

import hashlib
import json
import os
import struct
import subprocess
import sys
import time
from typing import Dict, Optional

QEMU_IMG = os.environ.get('QEMU_IMG', 'qemu-img')


def sha1(image_id: str) -> str:
    return hashlib.sha1(image_id.encode()).hexdigest()


class Tree:
    """An ``instances_path`` with a ``_base`` cache."""

    def __init__(self, root: str, subdirectory_name: str = '_base') -> None:
        self.root = root
        self.instances = os.path.join(root, 'instances')
        self.base_dir = os.path.join(self.instances, subdirectory_name)
        self.subdirectory_name = subdirectory_name
        os.makedirs(self.base_dir, exist_ok=True)
        os.makedirs(os.path.join(self.instances, 'locks'), exist_ok=True)

    # -- cache files ------------------------------------------------------

    def base(self, name: str, age: float = 0.0, size: int = 65536) -> str:
        """A cache file ``name``, ``age`` seconds old (mtime)."""
        path = os.path.join(self.base_dir, name)
        with open(path, 'wb') as f:
            # Real data so the file occupies blocks (size on disk > 0).
            f.write(hashlib.sha256(name.encode()).digest() * (size // 32))
        self.set_age(path, age)
        return path

    @staticmethod
    def set_age(path: str, age: float) -> None:
        t = time.time() - age
        os.utime(path, (t, t))

    # -- instance disks ---------------------------------------------------

    def instance_dir(self, instance: str) -> str:
        d = os.path.join(self.instances, instance)
        os.makedirs(d, exist_ok=True)
        return d

    def disk(self, instance: str, disk: str, backing: Optional[str],
             relative: bool = False, backing_fmt: str = 'raw') -> str:
        """A qcow2 disk; ``backing`` is a cache name or an absolute path."""
        d = self.instance_dir(instance)
        path = os.path.join(d, disk)
        cmd = [QEMU_IMG, 'create', '-q', '-f', 'qcow2']
        if backing is not None:
            # Absolute paths and protocol specs (json:, nbd:) as given.
            target = backing if (os.path.isabs(backing) or ':' in backing) \
                else os.path.join(self.base_dir, backing)
            if relative:
                target = os.path.relpath(target, d)
            cmd += ['-u', '-F', backing_fmt, '-b', target]
        cmd += [path, '1G']
        subprocess.run(cmd, check=True)
        return path

    def raw_disk(self, instance: str, disk: str, size: int = 65536) -> str:
        path = os.path.join(self.instance_dir(instance), disk)
        with open(path, 'wb') as f:
            f.write(b'\0' * size)
        return path

    def corrupt(self, instance: str, disk: str, how: str,
                backing: Optional[str] = None) -> str:
        """A disk whose header the manager must refuse to trust."""
        if how == 'vmdk':
            path = os.path.join(self.instance_dir(instance), disk)
            subprocess.run([QEMU_IMG, 'create', '-q', '-f', 'vmdk', path,
                            '1M'], check=True)
            return path
        path = self.disk(instance, disk, backing or 'f' * 40)
        with open(path, 'r+b') as f:
            if how == 'version':
                f.seek(4)
                f.write(struct.pack('>I', 9))
            elif how == 'backing-size':
                f.seek(16)
                f.write(struct.pack('>I', 0xFFFFF))
            elif how == 'truncated':
                f.truncate(40)
            elif how == 'nul-in-name':
                f.seek(8)
                off = struct.unpack('>Q', f.read(8))[0]
                f.seek(off + 3)
                f.write(b'\0')
            else:
                raise ValueError('unknown corruption %r' % how)
        return path

    def unreadable(self, instance: str, disk: str) -> str:
        """A disk the manager cannot open (needs a non-root user)."""
        path = self.raw_disk(instance, disk)
        os.chmod(path, 0)
        return path

    # -- nova's registry --------------------------------------------------

    def compute_nodes(self, hosts: Dict[str, float]) -> None:
        """hosts: name -> heartbeat age in seconds."""
        now = time.time()
        with open(os.path.join(self.instances, 'compute_nodes'), 'w') as f:
            json.dump({h: now - a for h, a in hosts.items()}, f)

    def nova_conf(self, extra: str = '', **image_cache) -> str:
        """A nova.conf for this tree; image_cache overrides [image_cache]."""
        ic = {'remove_unused_base_images': 'False'}
        ic.update({k: str(v) for k, v in image_cache.items()})
        text = ('[DEFAULT]\ninstances_path = %s\nhost = testhost\n'
                '[image_cache]\n%s\n%s\n'
                % (self.instances, '\n'.join('%s = %s' % kv
                                             for kv in ic.items()), extra))
        path = os.path.join(self.root, 'nova.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def listing(self) -> set:
        return set(os.listdir(self.base_dir))


DAY = 86400
HOUR = 3600

# The standard tree: every class of cache file and every kind of disk.
# name -> (age seconds, expected fate with nova's default ages:
#          'keep' (in use / young / unknown) or 'remove')
IMG = {k: sha1('image-%s' % k) for k in (
    'root', 'local', 'eph2', 'swapimg', 'rescue', 'resize', 'deleted',
    'snapchain', 'relative', 'unused_old', 'unused_young', 'resized_src',
    'shared_other_host', 'symlinked')}


def make_conf(tree: Tree, **overrides):
    """Config as the CLI builds it, with nova's removal off by default;
    ``group__name=value`` overrides an option."""
    from oslo_config import cfg

    from glance_ext.cache_manager import options

    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([], project='glance-ext-test', default_config_files=[])
    conf.set_override('instances_path', tree.instances)
    conf.set_override('host', 'testhost')
    conf.set_override('remove_unused_base_images', False, 'image_cache')
    for key, value in overrides.items():
        group, _, name = key.rpartition('__')
        conf.set_override(name, value, group or None)
    return conf


def build_standard_tree(root: str) -> Tree:
    """A tree with each case nova loses, and the plain ones."""
    t = Tree(root)
    old = 2 * DAY
    # Bases referenced by a disk: kept whatever their age.
    t.base(IMG['root'], old)
    t.disk('inst-a', 'disk', IMG['root'])
    t.base('ephemeral_1_0706d66', old)
    t.disk('inst-a', 'disk.local', 'ephemeral_1_0706d66')
    t.base('ephemeral_2_0706d66', old)               # second ephemeral
    t.disk('inst-a', 'disk.eph1', 'ephemeral_2_0706d66')
    t.base('swap_512', old)
    t.disk('inst-a', 'disk.swap', 'swap_512')
    t.raw_disk('inst-a', 'disk.config')
    t.raw_disk('inst-a', 'console.log')
    t.base(IMG['rescue'], old)                        # rescue image
    t.disk('inst-b', 'disk.rescue', IMG['rescue'])
    t.base(IMG['resize'] + '_20', old)                # unconfirmed resize
    t.disk('inst-c_resize', 'disk', IMG['resize'] + '_20')
    t.base(IMG['deleted'], old)                       # *_del directory
    t.disk('inst-d_del', 'disk', IMG['deleted'])
    t.base(IMG['snapchain'], old)                     # via a snapshot
    overlay = t.disk('inst-e', 'disk.snap', IMG['snapchain'])
    t.disk('inst-e', 'disk', overlay)
    t.base(IMG['relative'], old)                      # relative backing
    t.disk('inst-f', 'disk', IMG['relative'], relative=True)
    t.base(IMG['resized_src'] + '_sm', old)           # legacy resized
    t.disk('inst-g', 'disk', IMG['resized_src'] + '_sm')
    # Unused.
    t.base(IMG['unused_old'], old)                    # remove
    t.base(IMG['unused_old'] + '_10', 2 * HOUR)       # resized: remove
    t.base(IMG['unused_young'], HOUR)                 # keep: too young
    t.base(IMG['unused_young'] + '_10', 10 * 60)      # keep: too young
    t.base('swap_1024', old)                          # remove
    t.base('ephemeral_5_0706d66', old)                # remove
    # Leftovers.
    t.base(IMG['unused_old'] + '.part', old)          # remove
    t.base(IMG['root'] + '.converted', old)           # remove
    t.base(IMG['unused_young'] + '.part', 60)         # keep: young
    t.base(IMG['deleted'] + '.info', old)             # keep: base exists
    t.base(sha1('gone') + '.info', old)               # remove: base gone
    # Not nova's names: never touched.
    t.base('README', old)
    t.base('a' * 40 + '_x', old)
    t.base('ephemeral_5_0706d66_extra', old)
    t.compute_nodes({'testhost': 60})
    return t


# Expected outcome of one non-dry pass on the standard tree with nova's
# default ages, by name.
def standard_expected_removed() -> set:
    return {IMG['unused_old'], IMG['unused_old'] + '_10', 'swap_1024',
            'ephemeral_5_0706d66', IMG['unused_old'] + '.part',
            IMG['root'] + '.converted', sha1('gone') + '.info'}


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: %s ROOT' % sys.argv[0])
    tree = build_standard_tree(sys.argv[1])
    print('built %s; config: %s' % (tree.instances, tree.nova_conf()))
