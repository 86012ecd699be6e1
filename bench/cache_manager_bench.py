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

"""Benchmark: one cache-manager scan vs nova's way of finding bases in use.

Builds ``--instances`` instance directories and ``--bases`` cache files
(real qcow2 headers: one image per distinct backing-name length is made by
``qemu-img create -b``, then copied with the name swapped for another of
the same length and written sparse), then, side by side in this process:

* glance_ext: one dry-run pass of ``CachePass`` (lists ``_base``, reads the
  header of every file of every instance directory, follows chains,
  decides);
* reference: nova's method: one ``qemu-img info --force-share
  --output=json`` subprocess per instance disk, parsed with oslo.utils'
  ``QemuImgInfo``, backing file basename joined to ``_base`` (nova's
  ``_list_backing_images``). Nova only inspects the file ``disk``; the
  reference inspects every disk file so both decide on the same disks.
  Nova also wraps each call in ``python -m oslo_concurrency.prlimit``; the
  full reference runs without that wrapper (faster, so the ratio is
  conservative), and a sample of ``--prlimit-sample`` calls is timed with
  nova's exact command line to show the per-call cost nova really pays.

Usage: python bench/cache_manager_bench.py [--instances 10000] [--bases 2000]
"""

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time

from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_utils import imageutils

from glance_ext.cache_manager import cachepass
from glance_ext.cache_manager import options
from glance_ext.testing import cache_manager_trees as trees

DISK_FILES = ('disk', 'disk.local', 'disk.swap', 'disk.rescue')
CHUNK = 4096


class QcowFactory:
    """Sparse copies of qemu-img-made qcow2 images with the name swapped."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.templates = {}

    def _template(self, length: int):
        if length not in self.templates:
            placeholder = '/' + 'p' * (length - 1)
            path = os.path.join(self.workdir, 'template-%d.qcow2' % length)
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-u',
                            '-F', 'raw', '-b', placeholder, path, '10G'],
                           check=True)
            with open(path, 'rb') as f:
                data = f.read()
            offset = data.index(placeholder.encode())
            chunks = [(o, data[o:o + CHUNK])
                      for o in range(0, len(data), CHUNK)
                      if data[o:o + CHUNK].strip(b'\0')]
            self.templates[length] = (offset, chunks, len(data))
        return self.templates[length]

    def make(self, path: str, backing: str) -> None:
        name = backing.encode()
        offset, chunks, size = self._template(len(name))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for o, data in chunks:
                if o <= offset < o + len(data):
                    rel = offset - o
                    data = data[:rel] + name + data[rel + len(name):]
                os.pwrite(fd, data, o)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)


def build(workdir: str, n_instances: int, n_bases: int, seed: int) -> dict:
    rng = random.Random(seed)
    os.makedirs(workdir)
    tree = trees.Tree(workdir)
    factory = QcowFactory(workdir)
    n_orig = n_bases * 3 // 4
    n_resized = n_bases * 3 // 20
    n_swap = n_bases // 20
    n_eph = n_bases - n_orig - n_resized - n_swap
    originals = [trees.sha1('bench-%d' % i) for i in range(n_orig)]
    resized = ['%s_%d' % (originals[i], 20 + i % 5) for i in range(n_resized)]
    swaps = ['swap_%d' % (512 * (i + 1)) for i in range(n_swap)]
    ephs = ['ephemeral_%d_0706d66' % (i + 1) for i in range(n_eph)]
    payload = b'\x5a' * 4096
    for name in originals + resized + swaps + ephs:
        path = os.path.join(tree.base_dir, name)
        with open(path, 'wb') as f:
            f.write(payload)
        age = rng.choice((600, 2 * 3600, 2 * 86400))
        os.utime(path, (time.time() - age,) * 2)
    # Two thirds of each class is used by some disk, the rest is not.
    used_o = originals[:len(originals) * 2 // 3]
    used_r = resized[:len(resized) * 2 // 3]
    used_s = swaps[:len(swaps) * 2 // 3]
    used_e = ephs[:len(ephs) * 2 // 3]
    disks = 0
    for i in range(n_instances):
        name = '%08x-%04x-4000-8000-%012x' % (i, i % 65536, i)
        r = rng.random()
        if r < 0.05:
            name += '_resize'
        elif r < 0.08:
            name += '_del'
        d = os.path.join(tree.instances, name)
        os.mkdir(d)
        root = rng.choice(used_r) if rng.random() < 0.2 else \
            rng.choice(used_o)
        files = {'disk': root}
        if rng.random() < 0.3:
            files['disk.local'] = rng.choice(used_e)
        if rng.random() < 0.2:
            files['disk.swap'] = rng.choice(used_s)
        if rng.random() < 0.02:
            files['disk.rescue'] = rng.choice(used_o)
        info = {}
        for fname, base in files.items():
            p = os.path.join(d, fname)
            factory.make(p, os.path.join(tree.base_dir, base))
            info[p] = 'qcow2'
            disks += 1
        if rng.random() < 0.2:
            with open(os.path.join(d, 'disk.config'), 'wb') as f:
                f.write(b'\0' * 4096)
            info[os.path.join(d, 'disk.config')] = 'raw'
        with open(os.path.join(d, 'disk.info'), 'w') as f:
            json.dump(info, f)
        with open(os.path.join(d, 'console.log'), 'w') as f:
            f.write('login: \n')
        with open(os.path.join(d, 'libvirt.xml'), 'w') as f:
            f.write('<domain/>\n')
    for f in os.listdir(workdir):
        if f.startswith('template-'):
            os.unlink(os.path.join(workdir, f))
    return {'tree': tree, 'qcow2_disks': disks}


def ours(tree) -> tuple:
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('instances_path', tree.instances)
    conf.set_override('remove_unused_base_images', False, 'image_cache')
    t0 = time.perf_counter()
    cp = cachepass.CachePass(conf)
    result = cp.run(dry_run=True)
    elapsed = time.perf_counter() - t0
    scan = cp._previous_scan
    per_disk = {}
    for path, rec in scan.records.items():
        if not path.startswith(tree.instances + '/') or \
                path.startswith(tree.base_dir + '/'):
            continue
        names = []
        for ref in (rec.header.references if rec.header else []):
            target = cp.scanner._resolve(ref, os.path.dirname(path), path,
                                         scan)
            n = cp.scanner.base_name_of(target) if target else None
            if n:
                names.append(n)
        per_disk[path] = names[0] if names else None
    in_use = {n for n, e in result.entries.items()
              if e.state == cachepass.IN_USE}
    return elapsed, result, per_disk, in_use


def reference_disks(tree):
    out = []
    for inst in sorted(os.listdir(tree.instances)):
        d = os.path.join(tree.instances, inst)
        if inst in ('_base', 'locks') or not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f in DISK_FILES or f.startswith('disk.eph'):
                out.append(os.path.join(d, f))
    return out


def reference(tree, disks) -> tuple:
    """nova's _list_backing_images, one qemu-img info per disk."""
    t0 = time.perf_counter()
    os.listdir(tree.base_dir)
    per_disk = {}
    for path in disks:
        out = subprocess.run(
            ['env', 'LC_ALL=C', 'LANG=C', 'qemu-img', 'info', path,
             '--force-share', '--output=json'],
            check=True, capture_output=True, text=True).stdout
        backing = imageutils.QemuImgInfo(out, format='json').backing_file
        per_disk[path] = os.path.basename(backing) if backing else None
    elapsed = time.perf_counter() - t0
    return elapsed, per_disk, {b for b in per_disk.values() if b}


def nova_exact_sample(disks, n: int) -> float:
    """Seconds per call of nova's exact command (env + prlimit wrapper)."""
    limits = processutils.ProcessLimits(cpu_time=30,
                                        address_space=1 * 1024 ** 3)
    sample = disks[:n]
    t0 = time.perf_counter()
    for path in sample:
        processutils.execute('env', 'LC_ALL=C', 'LANG=C', 'qemu-img', 'info',
                             path, '--force-share', '--output=json',
                             prlimit=limits)
    return (time.perf_counter() - t0) / max(1, len(sample))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--instances', type=int, default=10000)
    ap.add_argument('--bases', type=int, default=2000)
    ap.add_argument('--workdir', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'out', 'cm-tree'))
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--prlimit-sample', type=int, default=200)
    ap.add_argument('--json', default=None, help='write results here')
    args = ap.parse_args()
    # Neither side logs per file: nova's reference here does not either.
    logging.getLogger('glance_ext').setLevel(logging.ERROR)

    if os.path.exists(args.workdir):
        shutil.rmtree(args.workdir)       # a previous run's tree, not timed
    t0 = time.perf_counter()
    built = build(args.workdir, args.instances, args.bases, args.seed)
    gen = time.perf_counter() - t0
    tree = built['tree']
    print('generated %d instance dirs, %d bases, %d qcow2 disks in %.1f s'
          % (args.instances, args.bases, built['qcow2_disks'], gen),
          flush=True)

    t_ours, result, ours_disks, ours_in_use = ours(tree)
    print('glance_ext pass: %.2f s' % t_ours, flush=True)
    disks = reference_disks(tree)
    t_ref, ref_disks, ref_in_use = reference(tree, disks)
    print('reference: %.2f s' % t_ref, flush=True)
    per_call = nova_exact_sample(disks, args.prlimit_sample)

    both = [p for p in disks if p in ours_disks]
    agree = sum(1 for p in both if ours_disks[p] == ref_disks[p])
    rows = {
        'instance_dirs': args.instances,
        'base_files': len(result.entries),
        'disks_reference_inspects': len(disks),
        'files_glance_ext_inspects': result.disks_scanned,
        'glance_ext_seconds': round(t_ours, 3),
        'reference_seconds': round(t_ref, 3),
        'ratio': round(t_ref / t_ours, 1),
        'disks_both_inspect': len(both),
        'disks_same_base_decision': agree,
        'in_use_sets_equal': ours_in_use == ref_in_use,
        'in_use_bases': len(ours_in_use),
        'nova_exact_seconds_per_call_sampled': round(per_call, 4),
        'nova_exact_extrapolated_seconds': round(per_call * len(disks), 1),
        'nova_exact_extrapolated_ratio': round(per_call * len(disks)
                                               / t_ours, 1),
        'generation_seconds': round(gen, 1),
    }
    print()
    print('| measure | value |')
    print('|---|---|')
    for k, v in rows.items():
        print('| %s | %s |' % (k, v))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    ok = rows['in_use_sets_equal'] and agree == len(both)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
