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

import configparser
import os

import pytest

from glance_ext.local_glance import config_files


def test_parse_overrides_groups_by_section():
    parsed = config_files.parse_overrides(
        ["DEFAULT.debug=true", "a_b.key=x=y", "a_b.other= v "])
    assert parsed == {"DEFAULT": {"debug": "true"},
                      "a_b": {"key": "x=y", "other": "v"}}


@pytest.mark.parametrize("bad", ["novalue", "nosection=1", ".key=1", "s.=1"])
def test_parse_overrides_names_the_bad_item(bad):
    with pytest.raises(ValueError, match="SECTION.KEY=VALUE"):
        config_files.parse_overrides([bad])


def _read(path):
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    parser.read(path)
    return parser


def test_written_files_describe_a_multistore_glance(tmp_path):
    layout = config_files.Layout(str(tmp_path))
    api = config_files.api_conf(
        layout, 9999, "sqlite:///x.db", [8765, 8766],
        config_files.parse_overrides(["DEFAULT.debug=true"]))
    imp = config_files.import_conf(
        ["glance_ext_validate", "glance_ext_convert"],
        config_files.parse_overrides(["glance_ext_validate.x=1"]))
    config_files.write_all(layout, api, imp, config_files.paste_ini([]))
    conf = _read(os.path.join(layout.etc_dir, config_files.API_CONF))
    assert conf.get("DEFAULT", "enabled_backends") == "fs:file"
    assert conf.get("DEFAULT", "debug") == "true"
    assert conf.get("import_filtering_opts", "allowed_ports") == "[8765,8766]"
    assert conf.get("os_glance_staging_store",
                    "filesystem_store_datadir") == layout.staging_dir
    imp_conf = _read(os.path.join(layout.etc_dir, config_files.IMPORT_CONF))
    assert imp_conf.get("image_import_opts", "image_import_plugins") == \
        "[glance_ext_validate,glance_ext_convert]"
    assert imp_conf.get("glance_ext_validate", "x") == "1"
    for path in (layout.staging_dir, layout.images_dir, layout.tasks_dir):
        assert os.path.isdir(path)


def test_paste_pipeline_puts_token_auth_before_context_and_extras_after():
    ini = config_files.paste_ini(["glance_ext.middleware:filter_factory"])
    parser = configparser.RawConfigParser()
    parser.read_string(ini)
    pipeline = parser.get("composite:api", "default").split()
    assert pipeline.index("glance_ext_token_auth") < pipeline.index("context")
    assert pipeline.index("context") < pipeline.index("extra_filter_0")
    assert pipeline[-1] == "rootapp"
    assert parser.get("filter:extra_filter_0", "paste.filter_factory") == \
        "glance_ext.middleware:filter_factory"


def test_paste_filter_must_name_a_factory():
    with pytest.raises(ValueError, match="module.path:factory"):
        config_files.paste_ini(["nofactory"])


def test_several_file_stores_first_is_default(tmp_path):
    layout = config_files.Layout(str(tmp_path))
    stores = config_files.check_stores(["fs", "fast"])
    api = config_files.api_conf(layout, 9999, "sqlite:///x.db", [8765], {},
                                stores)
    config_files.write_all(layout, api, config_files.import_conf([], {}),
                           config_files.paste_ini([]))
    conf = _read(os.path.join(layout.etc_dir, config_files.API_CONF))
    assert conf.get("DEFAULT", "enabled_backends") == "fs:file,fast:file"
    assert conf.get("glance_store", "default_backend") == "fs"
    assert conf.get("fs", "filesystem_store_datadir") == layout.images_dir
    fast_dir = conf.get("fast", "filesystem_store_datadir")
    assert fast_dir != layout.images_dir and os.path.isdir(fast_dir)
    # Every file store is thin and reads 1 MiB chunks (docs/convert.md,
    # "Store settings"); glance_store's defaults are off and 64 KiB.
    for store in ("fs", "fast"):
        assert conf.getboolean(store, "filesystem_thin_provisioning")
        assert conf.getint(store, "filesystem_store_chunk_size") == 1048576


@pytest.mark.parametrize("stores,reason", [
    (["fs", "fs"], "must differ"),
    (["os_glance_staging_store"], "reserved"),
    (["Bad-Name"], "lower-case"),
])
def test_bad_store_ids_say_why(stores, reason):
    with pytest.raises(ValueError, match=reason):
        config_files.check_stores(stores)


def test_nodes_have_their_own_config_staging_and_url(tmp_path):
    # Each node of several: its own etc, staging (so journal and slots),
    # tasks, locks and log; the file store is the one of the whole Glance.
    root = config_files.Layout(str(tmp_path))
    a, b = root.for_node(0), root.for_node(1)
    assert a.etc_dir != b.etc_dir and a.staging_dir != b.staging_dir
    assert a.staging_dir == str(tmp_path / "nodes" / "node-0" / "staging")
    assert a.log_file != b.log_file and a.lock_dir != b.lock_dir
    assert a.store_dir("fs") == b.store_dir("fs") == root.images_dir
    assert a.state_file == b.state_file == root.state_file
    conf_a = config_files.api_conf(a, 9001, "postgresql://x", [8765], {})
    conf_b = config_files.api_conf(b, 9002, "postgresql://x", [8765], {})
    assert conf_a["DEFAULT"]["worker_self_reference_url"] == \
        "http://127.0.0.1:9001"
    assert conf_b["DEFAULT"]["worker_self_reference_url"] == \
        "http://127.0.0.1:9002"
    assert conf_a["fs"] == conf_b["fs"]
    assert conf_a["os_glance_staging_store"] != \
        conf_b["os_glance_staging_store"]
    # Glance reads it when it proxies an import to the staging node.
    assert conf_a["keystone_authtoken"]["auth_url"]
    shared = root.for_node(1, shared_staging=True)
    assert shared.staging_dir == root.staging_dir
    assert shared.etc_dir == b.etc_dir


def test_several_nodes_refuse_sqlite_before_starting_anything(tmp_path):
    from glance_ext.local_glance import errors
    from glance_ext.local_glance import service
    with pytest.raises(errors.LocalGlanceError) as err:
        service.up(service.Settings(state_dir=str(tmp_path / "s"),
                                    nodes=2, db="sqlite"))
    assert "--db postgresql" in str(err.value)
    assert not (tmp_path / "s").exists()


def test_state_lists_its_nodes_and_reads_old_states(tmp_path):
    import dataclasses
    import json

    from glance_ext.local_glance import service
    node = service.NodeState(1, 42, 9002, "http://127.0.0.1:9002",
                             "/l", "/s", "/e", "h-node1")
    state = service.State(pid=41, port=9001, url="http://127.0.0.1:9001",
                          db="postgresql", plugins=[], member_token="m",
                          admin_token="a", started_at=0.0, log_file="/l0",
                          staging_dir="/s0", nodes=[
                              service.NodeState(0, 41, 9001,
                                                "http://127.0.0.1:9001",
                                                "/l0", "/s0", "/e0"),
                              node])
    layout = config_files.Layout(str(tmp_path))
    with open(layout.state_file, "w") as fh:
        json.dump(dataclasses.asdict(state), fh)
    back = service.read_state(str(tmp_path))
    assert back.all_nodes()[1] == node
    old = dataclasses.asdict(state)
    del old["nodes"], old["shared_staging"]
    with open(layout.state_file, "w") as fh:
        json.dump(old, fh)
    (only,) = service.read_state(str(tmp_path)).all_nodes()
    assert only.pid == 41 and only.url == "http://127.0.0.1:9001"
