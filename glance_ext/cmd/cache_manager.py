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

"""The ``glance-ext-cache-manager`` command.

Reads nova.conf as is: without ``--config-file`` oslo.config looks for
nova's own files (``/etc/nova/nova.conf`` ...), so on a compute node the
manager sees the same instances_path, cache name and ages as nova. The
shared options (``--config-file``, ``--config-dir``, ``--log-file``,
``--log-dir``, ``--debug``, ``--version``) work before or after the
sub-command, as in ``glance-ext`` (``glance_ext.cmd.common``).

Exit status: 0 done; 1 failed; 2 usage or configuration error (including
an instances path that does not exist); 3 (``run --once`` and ``report``)
removal was blocked: something was due for removal but a safety check
kept it (a stale host on shared storage, nova still removing, an
unreadable disk), see the report's blocking reasons.
"""

import argparse
import os
import signal
import sys
import threading
from typing import Optional, Sequence

from oslo_config import cfg
from oslo_log import log as logging

from glance_ext.cache_manager import cachepass
from glance_ext.cache_manager import locking
from glance_ext.cache_manager import metrics as metrics_mod
from glance_ext.cache_manager import options
from glance_ext.cache_manager import quarantine as quarantine_mod
from glance_ext.cache_manager import report
from glance_ext.cmd import common

LOG = logging.getLogger(__name__)
PROG = 'glance-ext-cache-manager'

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
CONFIG_HELP = ("nova.conf (repeatable); default: nova's own config files "
               "(/etc/nova/nova.conf ...)")
EPILOG = ("exit status: 0 done, 1 failed, 2 usage or configuration error, "
          "3 removal blocked (run --once, report)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Keep nova's _base image cache within nova's aging "
                    "policy without removing a base any disk still uses. "
                    "Run it with nova's [image_cache] "
                    "remove_unused_base_images = False.", epilog=EPILOG)
    common.add_options(p, config_help=CONFIG_HELP)
    sub = p.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    run = sub.add_parser('run', help='run passes (daemon unless --once)')
    run.add_argument('--once', action='store_true',
                     help='one pass, then exit (for cron)')
    run.add_argument('--dry-run', action='store_true',
                     help='decide and report, change nothing')
    run.add_argument('--force', action='store_true',
                     help='remove even while a host sharing the storage '
                          'has a stale heartbeat')
    run.add_argument('--format', choices=('table', 'json', 'none'),
                     default='none', help='print the pass report')
    rep = sub.add_parser('report', help='what a pass would do, changing '
                                        'nothing')
    rep.add_argument('--format', choices=('table', 'json'),
                     default='table')
    res = sub.add_parser('restore', help='put a quarantined file back')
    res.add_argument('name')
    for child in (run, rep, res):
        child.epilog = EPILOG
        common.add_options(child, sub=True, config_help=CONFIG_HELP)
    return p


def load_config(args: argparse.Namespace) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    logging.register_options(conf)
    # Logs go to stderr unless nova.conf names a log file: stdout carries
    # the report, which must stay parseable JSON.
    conf.set_default('use_stderr', True)
    conf(common.oslo_args(args), project='nova', prog=PROG)
    # oslo.config checks values only when they are read: read ours now so
    # a bad value is reported before anything is done.
    for group, opts in options.list_opts():
        node = conf if str(group) == 'DEFAULT' else conf[str(group)]
        for opt in opts:
            getattr(node, opt.dest)
    if conf.log_dir and not conf.log_file:
        # oslo.log would name the file after argv[0].
        conf.set_override('log_file', PROG + '.log')
    logging.setup(conf, PROG)
    return conf


def _print(result: cachepass.PassResult, fmt: str) -> None:
    if fmt == 'json':
        print(report.as_json(result))
    elif fmt == 'table':
        print(report.as_table(result))


def _restore(conf: cfg.ConfigOpts, name: str) -> int:
    cp = cachepass.CachePass(conf)
    with locking.NovaLocks(conf.instances_path) as locks:
        if not locks.acquire(name, wait=60):
            print('nova holds its lock on %s for over 60 s; try again'
                  % name, file=sys.stderr)
            return EXIT_FAILURE
        try:
            cp.quarantine.restore(name)
        except quarantine_mod.QuarantineError as exc:
            print('cannot restore: %s' % exc, file=sys.stderr)
            return EXIT_FAILURE
    print('restored %s into %s' % (name, cp.base_dir))
    return EXIT_OK


def _daemon(conf: cfg.ConfigOpts, cp: cachepass.CachePass,
            metrics: metrics_mod.Metrics, args) -> int:
    interval = conf.image_cache.manager_interval
    if interval < 0:
        print('[image_cache] manager_interval = -1 disables the periodic '
              'pass; use "run --once" from cron instead', file=sys.stderr)
        return EXIT_USAGE
    interval = interval or 60
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if conf.cache_manager.metrics_port:
        metrics.serve(conf.cache_manager.metrics_port,
                      conf.cache_manager.metrics_address)
    while not stop.is_set():
        _one_pass(conf, cp, metrics, args)
        stop.wait(interval)
    return EXIT_OK


def _one_pass(conf, cp, metrics, args) -> cachepass.PassResult:
    result = cp.run(dry_run=args.dry_run, force=args.force)
    if not args.dry_run:
        metrics.observe(result)
        if conf.cache_manager.metrics_textfile:
            metrics.write_textfile(conf.cache_manager.metrics_textfile)
    LOG.info('Cache pass done in %.2f s: %s; quarantined %d files '
             '(%d bytes)%s', result.finished - result.started,
             ', '.join('%s=%d' % (k, v[0]) for k, v in
                       sorted(result.totals_by_state().items())),
             len(result.quarantined), result.reclaimed_bytes,
             ('; not removing: ' + '; '.join(result.blocked_reasons))
             if result.blocked_reasons else '')
    _print(result, getattr(args, 'format', 'none'))
    return result


def _no_instances_path(conf: cfg.ConfigOpts) -> Optional[str]:
    """The usage error when there is nothing nova-like to manage."""
    if os.path.isdir(conf.instances_path):
        return None
    found = ', '.join(conf.config_file) or 'none found'
    return ('instances path %s does not exist (config files: %s): pass '
            'nova.conf with --config-file, or set [DEFAULT] instances_path '
            '(or state_path) to where nova keeps instances'
            % (conf.instances_path, found))


def _status(result: cachepass.PassResult) -> int:
    return EXIT_BLOCKED if result.blocked_reasons else EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = common.merge(build_parser().parse_args(argv))
    problem = common.missing_config(args)
    if problem:
        print('%s: error: %s' % (PROG, problem), file=sys.stderr)
        return EXIT_USAGE
    try:
        conf = load_config(args)
    except cfg.Error as exc:
        print('configuration error: %s' % exc, file=sys.stderr)
        return EXIT_USAGE
    problem = _no_instances_path(conf)
    if problem:
        print('%s: error: %s' % (PROG, problem), file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == 'restore':
            return _restore(conf, args.name)
        cp = cachepass.CachePass(conf)
        if args.command == 'report':
            result = cp.run(dry_run=True)
            _print(result, args.format)
            return _status(result)
        metrics = metrics_mod.Metrics()
        if args.once or args.dry_run:
            return _status(_one_pass(conf, cp, metrics, args))
        return _daemon(conf, cp, metrics, args)
    except quarantine_mod.QuarantineError as exc:
        print('error: %s' % exc, file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
