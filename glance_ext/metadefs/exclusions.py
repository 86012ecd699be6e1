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

"""Nova image properties the catalog deliberately does not describe.

Each entry is a field of nova 34's ``ImageMetaProps`` (or a legacy name
nova still maps) that no code in nova 34 consumes any more: nova's image
object still accepts it, so setting it is harmless, but describing it to
operators would suggest it does something.  ``glance-ext metadefs
coverage`` counts these as accounted for and fails if one of them appears
in the catalog too, or disappears from nova.  Found by searching nova
34.0.0 (outside tests and the object/notification definitions) for
readers of each field.
"""

from typing import Dict

EXCLUDED_FIELDS: Dict[str, str] = {
    "hw_ephemeral_encryption_secret_uuid":
        "declared for encrypted ephemeral storage, but no code in nova 34 "
        "reads or writes it.",
    "hw_device_id": "XenAPI guest ABI version; the XenAPI driver was "
                    "removed from nova (Victoria) and nothing reads it.",
    "hw_ipxe_boot": "no code in nova 34 reads it (it served the removed "
                    "XenAPI driver).",
    "hw_rng_model": "nova's libvirt driver always uses virtio RNG and "
                    "reads hw_rng_model nowhere (see the NOTE on the field "
                    "in nova/objects/image_meta.py); RNG is requested with "
                    "the flavor extra spec hw_rng:allowed.",
    "img_bittorrent": "BitTorrent download belonged to the removed XenAPI "
                      "driver.",
    "img_cache_in_nova": "only read by the removed XenAPI driver.",
    "img_compression_level": "only read by the removed XenAPI driver.",
    "img_use_agent": "XenAPI guest agent switch; driver removed.",
    "os_skip_agent_inject_files_at_boot": "XenAPI guest agent switch; "
                                          "driver removed.",
    "os_skip_agent_inject_ssh": "XenAPI guest agent switch; driver removed.",
}

# Legacy names nova still maps to a current field but that the catalog does
# not describe: their current field is excluded above, or they are VMware
# spellings of a field the catalog already describes under its current name.
EXCLUDED_LEGACY_NAMES: Dict[str, str] = {
    "vmware_ostype": "VMware spelling of os_distro; use os_distro.",
    "ipxe_boot": "maps to hw_ipxe_boot (excluded).",
    "xenapi_device_id": "maps to hw_device_id (excluded).",
    "xenapi_image_compression_level": "maps to img_compression_level "
                                      "(excluded).",
    "vmware_linked_clone": "VMware spelling of img_linked_clone; use "
                           "img_linked_clone.",
    "xenapi_use_agent": "maps to img_use_agent (excluded).",
    "xenapi_skip_agent_inject_ssh": "maps to os_skip_agent_inject_ssh "
                                    "(excluded).",
    "xenapi_skip_agent_inject_files_at_boot":
        "maps to os_skip_agent_inject_files_at_boot (excluded).",
    "cache_in_nova": "maps to img_cache_in_nova (excluded).",
    "bittorrent": "maps to img_bittorrent (excluded).",
}

# Legacy names the catalog must describe (issue: still common in clouds).
REQUIRED_LEGACY_NAMES = ("architecture", "vm_mode", "auto_disk_config",
                         "hypervisor_type")

# Fields nova writes itself when it snapshots an instance (under their
# legacy names: bdm_v2, block_device_mapping, root_device_name, owner_id,
# vmware_image_version; mappings travels with block_device_mapping); the
# catalog marks them readonly and enforcement never rejects them.
SNAPSHOT_FIELDS = ("img_bdm_v2", "img_block_device_mapping", "img_mappings",
                   "img_root_device_name", "img_owner_id", "img_version")

# Nova 34 flavor extra-spec validators (by nova's name template) the
# catalog does not describe.  Each has a parameter whose values the site
# chooses, so no fixed metadefs property name can stand for it; the
# namespaces' descriptions say how to use them.
EXCLUDED_EXTRA_SPECS: Dict[str, str] = {
    "aggregate_instance_extra_specs:{key}":
        "the key is whatever metadata the operator puts on host "
        "aggregates (AggregateInstanceExtraSpecsFilter matches "
        "aggregate_instance_extra_specs:<key> against aggregate metadata "
        "<key>); describe a site's keys in its own namespace associated "
        "with OS::Nova::Aggregate (no prefix) and OS::Nova::Flavor (prefix "
        "aggregate_instance_extra_specs:).",
    "resources{group}:CUSTOM_{resource}":
        "custom resource classes are created by each site in placement; "
        "their names cannot be listed in advance (nova accepts any "
        "CUSTOM_[A-Z0-9_]+ with an integer amount).",
    "trait{group}:CUSTOM_{trait}":
        "custom traits are created by each site in placement; their names "
        "cannot be listed in advance (nova accepts any CUSTOM_[A-Z0-9_]+ "
        "with required or forbidden).",
}

# Nova 34 scheduler filters named Aggregate* (they read aggregate
# metadata) whose keys the aggregate namespace does not describe.
EXCLUDED_AGGREGATE_FILTERS: Dict[str, str] = {
    "AggregateInstanceExtraSpecsFilter":
        "matches site-chosen aggregate keys against flavor extra specs "
        "aggregate_instance_extra_specs:<key> (see EXCLUDED_EXTRA_SPECS).",
    "AggregateImagePropertiesIsolation":
        "its aggregate keys are image property names (values: "
        "comma-separated lists); the image namespaces describe those keys, "
        "and nova logs that the filter is superseded by isolated aggregate "
        "filtering (trait:<TRAIT>=required on aggregates).",
}
