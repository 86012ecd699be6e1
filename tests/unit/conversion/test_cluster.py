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

"""The cluster-wide cap when its backend cannot be used, and its options.

An unreachable backend needs no server: a loopback port nothing listens
on is exactly that (the behaviour with real etcd and redis servers, up
and stopped mid-run, is in tests/functional/coordination). Proves: the
default fails with a reason naming the backend (never its password) and
gives the host slot back; ``host_limits`` goes on with the host slot; a
missing driver package is named with what to install; a URL tooz cannot
use is refused when the options are read; the convert plugin reports the
environment fault as such and reverts the image.
"""

import socket

import pytest

from glance_ext import exceptions
from glance_ext.cmd import main
from glance_ext.common import coordination
from glance_ext.conversion import cluster
from glance_ext.conversion import options
from glance_ext.conversion import settings as settings_mod
from glance_ext.conversion import slots
from glance_ext.plugins import base
from tests.unit.conversion import test_convert_plugin as plugin_tests


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def listener():
    """A loopback port that accepts connections and says nothing."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("url,shown", [
    ("redis://:s3cret@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"),
    ("redis://user:s3cret@h:1?db=2", "redis://user:***@h:1?db=2"),
    ("redis://h:1?sentinel=m&sentinel_password=s3cret",
     "redis://h:1?sentinel=m&sentinel_password=***"),
    ("etcd3+http://127.0.0.1:2379?lock_timeout=5",
     "etcd3+http://127.0.0.1:2379?lock_timeout=5"),
])
def test_redact(url, shown):
    assert coordination.redact(url) == shown


@pytest.mark.parametrize("url,target", [
    ("etcd3+http://10.0.0.1", ("tcp", ("10.0.0.1", 2379))),
    ("etcd3+https://e:2400", ("tcp", ("e", 2400))),
    ("redis://r", ("tcp", ("r", 6379))),
    ("redis:///run/redis.sock", ("unix", "/run/redis.sock")),
    ("file:///var/lib/x", None),
])
def test_endpoint(url, target):
    assert coordination.endpoint(url) == target


@pytest.mark.parametrize("scheme", ["etcd3+http", "redis"])
def test_unreachable_fails_and_gives_the_host_slot_back(scheme, tmp_path):
    url = "%s://:pw@127.0.0.1:%d" % (scheme, _closed_port()) \
        if scheme == "redis" else "%s://127.0.0.1:%d" % (scheme,
                                                         _closed_port())
    host = slots.HostSlots(str(tmp_path), 1, node="n1")
    with pytest.raises(exceptions.CoordinationUnavailable) as err:
        slots.acquire_all(host, cluster.ClusterSlots(url, 2), timeout=30)
    text = str(err.value)
    assert isinstance(err.value, exceptions.ToolUnavailable)
    assert coordination.redact(url) in text and "pw" not in text
    assert "cannot connect" in text and "not of any image" in text
    assert host.busy() == 0


def test_unreachable_with_host_limits_goes_on(tmp_path):
    url = "etcd3+http://127.0.0.1:%d" % _closed_port()
    host = slots.HostSlots(str(tmp_path), 1, node="n1")
    held = slots.acquire_all(host, cluster.ClusterSlots(url, 2), timeout=30,
                             unreachable=slots.UNREACHABLE_HOST_LIMITS)
    assert held.cluster is None and url in held.degraded
    assert host.busy() == 1
    held.release()
    assert host.busy() == 0


def test_missing_driver_is_named(listener, tmp_path):
    # tooz's zookeeper driver needs kazoo, which glance_ext does not
    # install.
    url = "zookeeper://127.0.0.1:%d" % listener
    try:
        import kazoo  # noqa: F401
        pytest.skip("kazoo is installed: no missing driver to show")
    except ImportError:
        pass
    with pytest.raises(exceptions.ToolUnavailable) as err:
        cluster.ClusterSlots(url, 1).try_acquire()
    assert "kazoo" in str(err.value) and "pip install" in str(err.value)


def test_host_slot_files_are_named_after_the_node(tmp_path):
    a = slots.HostSlots(str(tmp_path), 1, node="ctl-1")
    b = slots.HostSlots(str(tmp_path), 1, node="ctl/2")
    held_a, held_b = a.try_acquire(), b.try_acquire()
    # One directory shared by two nodes still limits each on its own.
    assert held_a is not None and held_b is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ctl-1.slot-0", "ctl_2.slot-0"]
    held_a.release()
    held_b.release()


def test_wait_text():
    assert slots.Wait(3.0, slots.Scope.CLUSTER, 2).text == \
        "2 allowed in the cluster"
    assert slots.Wait(3.0, slots.Scope.HOST, 4).text == \
        "4 allowed on this host"


def test_settings_refuse_an_url_tooz_cannot_use():
    with pytest.raises(settings_mod.SettingsError) as err:
        settings_mod.Settings(coordination_url="etcd://:pw@127.0.0.1:1")
    assert "coordination_url" in str(err.value) and "pw" not in str(
        err.value)
    assert "redis" in str(err.value)
    with pytest.raises(settings_mod.SettingsError):
        settings_mod.Settings(coordination_url="127.0.0.1:2379")
    ok = settings_mod.Settings(coordination_url="redis://127.0.0.1:1")
    assert ok.cluster_max_concurrent == 4
    assert ok.coordination_unreachable == "fail"


def test_source_rules_still_checked_with_a_coordination_url():
    # The scheme check must not replace the set of output formats the
    # source_format_rules are checked against.
    ok = settings_mod.Settings(coordination_url="redis://127.0.0.1:1",
                               source_format_rules=(("vmdk", "raw"),
                                                    ("iso", "keep")))
    assert ok.source_rule_map == {"vmdk": "raw", "iso": "keep"}
    with pytest.raises(settings_mod.SettingsError):
        settings_mod.Settings(coordination_url="redis://127.0.0.1:1",
                              source_format_rules=(("vmdk", "ext4"),))


def test_cli_exits_2_when_the_backend_cannot_be_used(samples, tmp_path,
                                                     capsys):
    url = "etcd3+http://127.0.0.1:%d" % _closed_port()
    conf = tmp_path / "glance-image-import.conf"
    conf.write_text("[glance_ext_convert]\ncoordination_url = %s\n"
                    "lock_dir = %s\n" % (url, tmp_path / "l"))
    dst = tmp_path / "o.raw"
    rc = main.main(["convert", samples["qcow2"].path, str(dst), "--to",
                    "raw", "--config-file", str(conf)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert url in err and "not of any image" in err
    assert "cannot convert on this host" in err
    assert "conversion refused or failed" not in err
    assert not dst.exists()


def test_options_are_listed():
    names = {o.name for o in options.convert_opts}
    assert {"coordination_url", "cluster_max_concurrent",
            "coordination_unreachable"} <= names


def test_plugin_reports_an_unreachable_backend_as_the_deployment(
        samples, tmp_path, conf):
    url = "redis://127.0.0.1:%d" % _closed_port()
    conf(coordination_url=url)
    staged = plugin_tests.stage(samples, "qcow2", tmp_path)
    image = plugin_tests.FakeImage("qcow2")
    with pytest.raises(base.PluginFailure) as err:
        plugin_tests.run(staged, image)
    text = str(err.value)
    # Through the one boundary: an environment fault, never a refusal.
    assert text.startswith("glance_ext_convert cannot run on this Glance "
                           "host: the coordination backend")
    assert "rejected" not in text
    assert url in text and "not of any image" in text
    assert "coordination_unreachable = host_limits" in text
    assert image.status == "queued"
    assert image.extra_properties["os_glance_failed_import"] == "fs"


conf = plugin_tests.conf
