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

"""What the generated flavor and aggregate namespaces say to operators.

Nova's validators give every extra spec's name, value type, enum, range and
pattern: the generator (flavor_generator) takes those from nova itself.
What nova does not give is a title (Horizon's metadata dialog shows it) and
text an operator can act on, so that is written here, once, in our own
words: facts checked against nova 34's code, no paragraphs copied from it.
A validator that has neither an entry here nor a template (the families:
traits, resource classes, capabilities, quotas) makes the generator stop
and name it, so a nova upgrade cannot add an undescribed spec silently.
"""

import dataclasses
from typing import Dict, Optional, Tuple

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import extra_specs

FLAVOR = catalog_mod.FLAVOR
AGGREGATE = extra_specs.AGGREGATE


@dataclasses.dataclass(frozen=True)
class Text:
    title: str
    description: str


@dataclasses.dataclass(frozen=True)
class NamespaceInfo:
    """One generated namespace file and where its keys apply."""

    filename: str
    namespace: str
    display_name: str
    description: str
    resource_type: str
    prefix: str = ""


FLAVOR_HARDWARE = NamespaceInfo(
    "nova-flavor-hardware.json", "GlanceExt::Nova::FlavorHardware",
    "CPU, memory and TPM options only flavors set (nova)",
    "Flavor extra specs hw:<name> that have no image property twin: "
    "realtime vCPUs, the dedicated-CPU mask of the mixed policy, emulator "
    "threads, persistent memory, the vTPM secret policy, hiding the "
    "hypervisor. Generated from nova's own extra-spec validators by "
    "tools/generate_flavor_namespaces.py. The hw:<name> specs with an image "
    "twin hw_<name> are in GlanceExt::Nova::CPU, ::MemoryNUMA and "
    "::Devices, which flavors share with images.",
    FLAVOR, "hw:")
FLAVOR_GUEST = NamespaceInfo(
    "nova-flavor-guest.json", "GlanceExt::Nova::FlavorGuest",
    "Guest devices, boot and driver options of flavors (nova)",
    "Flavor extra specs for the random number generator, video memory "
    "limit, PCI passthrough, Cyborg accelerators, secure boot and the VMware "
    "driver, plus the deprecated unprefixed hide_hypervisor_id. Generated "
    "from nova's own extra-spec validators by "
    "tools/generate_flavor_namespaces.py.",
    FLAVOR)
FLAVOR_QUOTA = NamespaceInfo(
    "nova-flavor-quota.json", "GlanceExt::Nova::FlavorQuota",
    "CPU, disk and network limits of flavors (nova quota:)",
    "Flavor extra specs quota:<name>: CPU shares, period and quota, disk "
    "and interface bandwidth limits (libvirt driver) and the VMware "
    "driver's limits, reservations and shares. Generated from nova's own "
    "extra-spec validators by tools/generate_flavor_namespaces.py.",
    FLAVOR, "quota:")
FLAVOR_RESOURCES = NamespaceInfo(
    "nova-flavor-resources.json", "GlanceExt::Nova::FlavorResources",
    "Placement resources requested by flavors (nova resources:)",
    "Flavor extra specs resources:<CLASS>=<amount>, one per standard "
    "resource class of os-resource-classes, and group_policy. A numbered "
    "request group takes the same values: resources<group>:<CLASS>, group "
    "1 to 64 letters, digits, _ or - (e.g. resources1:VGPU=1). "
    "resources:CUSTOM_<NAME> classes are site-defined, not listed. "
    "Generated from nova's own extra-spec validators by "
    "tools/generate_flavor_namespaces.py.",
    FLAVOR)
FLAVOR_TRAITS = NamespaceInfo(
    "nova-flavor-traits.json", "GlanceExt::Nova::FlavorTraits",
    "Required and forbidden traits of flavors (nova trait:)",
    "One property per trait of os-traits: trait:<TRAIT>=required schedules "
    "only to hosts whose resource provider has the trait, =forbidden only "
    "to hosts without it. trait<group>:<TRAIT> (group: 1 to 64 letters, "
    "digits, _ or -) puts the trait into a numbered request group with the "
    "same values. CUSTOM_* traits are site-defined and not listed. Images "
    "use GlanceExt::Nova::Traits (images can only require). Generated from "
    "nova's own extra-spec validators by "
    "tools/generate_flavor_namespaces.py.",
    FLAVOR, "trait:")
HOST_CAPABILITIES = NamespaceInfo(
    "nova-host-capabilities.json", "GlanceExt::Nova::HostCapabilities",
    "Compute host capabilities a flavor can require (nova capabilities:)",
    "Flavor extra specs capabilities:<name>, compared with each host by the "
    "ComputeCapabilitiesFilter. Value: a literal, or an operator and "
    "operand (= == != >= <= on numbers, s== s!= s< s<= s> s>= on strings, "
    "<in>, <all-in>, '<or> a <or> b'). Structured ones take a path, e.g. "
    "capabilities:cpu_info:features='<all-in> aes'. Generated from nova's "
    "own extra-spec validators by tools/generate_flavor_namespaces.py.",
    FLAVOR, "capabilities:")
AGGREGATE_SCHEDULING = NamespaceInfo(
    "nova-aggregate.json", "GlanceExt::Nova::Aggregate",
    "Host aggregate metadata nova's scheduler reads",
    "Aggregate metadata nova reads: availability zone, the keys of the "
    "Aggregate* filters and the per-aggregate weigher multipliers (with "
    "several aggregates, the smallest number wins). Keys of "
    "aggregate_instance_extra_specs:<key> flavor specs are site-defined; "
    "trait:<TRAIT>=required is in GlanceExt::Nova::Traits. Generated from "
    "nova's scheduler filters, weighers and options by "
    "tools/generate_flavor_namespaces.py.",
    AGGREGATE)

FLAVOR_NAMESPACES: Tuple[NamespaceInfo, ...] = (
    FLAVOR_HARDWARE, FLAVOR_GUEST, FLAVOR_QUOTA, FLAVOR_RESOURCES,
    FLAVOR_TRAITS, HOST_CAPABILITIES)

# Text of the specs described one by one (keyed by nova's validator name).
SPEC_TEXT: Dict[str, Text] = {
    "hw:cpu_realtime": Text(
        "Realtime vCPUs",
        "true gives the guest's vCPUs realtime scheduling priority on the "
        "host. Needs hw:cpu_policy dedicated or mixed, and at least one "
        "vCPU left non-realtime with hw:cpu_realtime_mask (or "
        "hw:emulator_threads_policy set), otherwise the boot fails. Only "
        "the libvirt driver reads it."),
    "hw:cpu_dedicated_mask": Text(
        "Pinned vCPUs of a mixed policy",
        "With hw:cpu_policy mixed: which guest vCPUs are pinned to dedicated "
        "host CPUs; the others float over the shared ones. Same format as "
        "hw:cpu_realtime_mask: CPU numbers or ranges separated by commas, "
        "each may be negated with ^ (e.g. ^0-1 pins all but vCPUs 0 and "
        "1). Refused with any other CPU policy. Only the libvirt driver "
        "reads it."),
    "hw:emulator_threads_policy": Text(
        "Emulator threads placement",
        "Where QEMU's own (non-vCPU) threads run for a pinned guest. share: "
        "on the host's [compute] cpu_shared_set. isolate: on one extra "
        "dedicated host CPU reserved for this instance (counted as one more "
        "PCPU). isolate needs hw:cpu_policy dedicated or mixed. Only the "
        "libvirt driver reads it."),
    "hw:hide_hypervisor_id": Text(
        "Hide hypervisor ID",
        "true hides the KVM signature from the guest (some GPU drivers "
        "refuse to run in a VM). The image property img_hide_hypervisor_id "
        "does the same. Only the libvirt driver reads it."),
    "hw:pmem": Text(
        "Persistent memory namespaces",
        "Comma-separated labels of virtual persistent memory (vPMEM) "
        "devices to give the guest, each a label of the compute host's "
        "[libvirt] pmem_namespaces (e.g. 6GB,6GB). Only the libvirt driver "
        "on hosts with PMEM devices."),
    "hw:tpm_secret_security": Text(
        "vTPM secret security policy",
        "Who owns the vTPM's secret and what the instance can then do. "
        "user: owned by the instance's owner, kept private and in memory "
        "only on the host, so the instance cannot be live-migrated or "
        "resumed automatically after a host reboot. host: owned by the "
        "owner, stored persistently on the host (readable there), live "
        "migration and automatic resume work. deployment: owned by nova's "
        "service user, private on the host, live migration and resume work. "
        "Hosts offer the policies in [libvirt] supported_tpm_secret_security. "
        "There is deliberately no image property for it. Only the libvirt "
        "driver reads it."),
    "hide_hypervisor_id": Text(
        "Hide hypervisor ID" + extra_specs.DEPRECATED_TITLE_SUFFIX,
        extra_specs.DEPRECATED_DESCRIPTION_PREFIX +
        "use hw:hide_hypervisor_id. Same effect (hides the KVM signature "
        "from the guest), but as an unprefixed key the "
        "AggregateInstanceExtraSpecsFilter also tries to match it against "
        "aggregate metadata. Only the libvirt driver reads it."),
    "hw_rng:allowed": Text(
        "Allow a random number generator",
        "false: instances of this flavor get no virtio random number "
        "generator; true (the default since Ussuri): nova adds one, fed "
        "from the host's [libvirt] rng_dev_path. Only the libvirt driver "
        "reads it."),
    "hw_rng:rate_bytes": Text(
        "RNG bytes per period",
        "How many bytes of host entropy the guest may read per "
        "hw_rng:rate_period; 0 or unset means no limit. Only the libvirt "
        "driver reads it."),
    "hw_rng:rate_period": Text(
        "RNG period (ms)",
        "Length in milliseconds of the period hw_rng:rate_bytes applies "
        "to. Only the libvirt driver reads it."),
    "hw_video:ram_max_mb": Text(
        "Maximum video RAM (MiB)",
        "The largest hw_video_ram (MiB) an image may ask for with this "
        "flavor; a bigger image value makes the boot fail, and without "
        "this spec any image hw_video_ram does. No effect on vGPUs. Only "
        "the libvirt driver reads it."),
    "pci_passthrough:alias": Text(
        "PCI passthrough devices",
        "PCI devices to pass to the guest as <alias>:<count>, several "
        "separated by commas (e.g. a1:2,gpu:1); each alias is defined in "
        "nova.conf [pci] alias on the API and compute hosts. Only the "
        "libvirt driver."),
    "accel:device_profile": Text(
        "Accelerator device profile",
        "Name of a Cyborg device profile whose accelerators (FPGA, GPU...) "
        "the instance gets; the profile's resource requests are added to "
        "the flavor's."),
    "os:secure_boot": Text(
        "Secure boot",
        "required: boot with UEFI secure boot, fail if the host cannot; "
        "disabled: never. Needs UEFI firmware (image hw_firmware_type "
        "uefi). The image property os_secure_boot also takes optional; "
        "when flavor and image both set it they must agree. Only the "
        "libvirt driver reads it."),
    "vmware:hw_version": Text(
        "VMware hardware version",
        "Virtual hardware version of the VMs created, e.g. vmx-13; in a "
        "cloud with several ESXi versions it places instances on hosts "
        "that support it. Only the VMware driver reads it."),
    "vmware:storage_policy": Text(
        "VMware storage policy",
        "Name of the vCenter storage policy for the instance's disks; "
        "ignored unless storage policy based management (SPBM) is enabled. "
        "Only the VMware driver reads it."),
    "group_policy": Text(
        "Request group policy",
        "How placement may satisfy numbered request groups (resources1:..., "
        "trait1:...): none lets several groups come from the same resource "
        "provider, isolate needs a different provider for each group. "
        "Unnecessary without numbered groups."),
}

# Templates of the families, by the part of the validator name before the
# resource class, trait, capability or quota name.
# What a resource class counts, and (for the classes nova derives from the
# flavor itself) what setting it does.
RESOURCE_GLOSS: Dict[str, Tuple[str, str]] = {
    "VCPU": ("shared (floating) virtual CPUs",
             "Replaces the flavor's vcpus in the placement request; 0 "
             "removes it (e.g. for bare-metal flavors)."),
    "PCPU": ("dedicated (pinned) host CPUs",
             "Replaces the flavor's vcpus, like hw:cpu_policy=dedicated."),
    "MEMORY_MB": ("memory in MiB",
                  "Replaces the flavor's ram in the placement request; 0 "
                  "removes it."),
    "DISK_GB": ("local disk in GiB",
                "Replaces the flavor's root, ephemeral and swap disk in the "
                "placement request; 0 removes it."),
    "VGPU": ("virtual GPUs", ""),
    "VGPU_DISPLAY_HEAD": ("virtual GPU display heads", ""),
    "PGPU": ("physical GPUs", ""),
    "PCI_DEVICE": ("PCI devices", ""),
    "SRIOV_NET_VF": ("SR-IOV network virtual functions", ""),
    "NUMA_SOCKET": ("NUMA sockets", ""),
    "NUMA_CORE": ("NUMA cores", ""),
    "NUMA_THREAD": ("NUMA threads", ""),
    "NUMA_MEMORY_MB": ("NUMA memory in MiB", ""),
    "IPV4_ADDRESS": ("IPv4 addresses", ""),
    "NET_BW_EGR_KILOBIT_PER_SEC": ("outbound network bandwidth in kbit/s",
                                   ""),
    "NET_BW_IGR_KILOBIT_PER_SEC": ("inbound network bandwidth in kbit/s",
                                   ""),
    "MEM_ENCRYPTION_CONTEXT": ("memory encryption contexts (AMD SEV slots)",
                               ""),
    "FPGA": ("FPGAs", ""),
    "NET_PACKET_RATE_KILOPACKET_PER_SEC": ("network packet rate in kpps",
                                           ""),
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC": ("outbound network packet "
                                               "rate in kpps", ""),
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC": ("inbound network packet "
                                               "rate in kpps", ""),
}

CAPABILITY_GLOSS: Dict[str, str] = {
    "id": "the compute node's database id",
    "uuid": "the compute node's UUID",
    "service_id": "the id of the host's nova-compute service",
    "host": "the compute service's host name",
    "nodename": "the hypervisor node name",
    "hypervisor_hostname": "the hypervisor's host name",
    "hypervisor_type": "the hypervisor type, e.g. QEMU",
    "hypervisor_version": "the hypervisor version as one integer "
                          "(e.g. 8002000 for 8.2.0)",
    "host_ip": "the host's IP address ([DEFAULT] my_ip)",
    "vcpus": "the number of host CPUs",
    "vcpus_total": "the number of host CPUs",
    "vcpus_used": "the vCPUs in use",
    "memory_mb": "the host memory in MiB",
    "memory_mb_used": "the memory in use, MiB",
    "free_ram_mb": "the free memory, MiB",
    "total_usable_ram_mb": "the usable memory, MiB",
    "local_gb": "the local disk, GiB",
    "local_gb_used": "the local disk in use, GiB",
    "free_disk_gb": "the free local disk, GiB",
    "free_disk_mb": "the free local disk, MiB",
    "disk_mb_used": "the local disk in use, MiB",
    "total_usable_disk_gb": "the usable local disk, GiB",
    "disk_available_least": "the disk space left if every disk image "
                            "grew to full size, GiB",
    "current_workload": "the instances currently in a task (building, "
                        "migrating...)",
    "num_io_ops": "the instances currently in an I/O-heavy task",
    "running_vms": "the running instances",
    "num_instances": "the instances on the host",
    "failed_builds": "the recent failed builds on the host",
    "cpu_allocation_ratio": "the CPU overcommit ratio",
    "ram_allocation_ratio": "the memory overcommit ratio",
    "disk_allocation_ratio": "the disk overcommit ratio",
    "mapped": "whether the compute node is mapped to a cell (0/1)",
    "aggregates": "the host's aggregates",
    "cell_uuid": "the UUID of the host's cell",
    "updated": "when the host last reported",
    "cpu_info": "the host CPU description (JSON; use a path such as "
                "cpu_info:features)",
    "metrics": "the metrics the host reports",
    "stats": "the host's statistics (JSON)",
    "numa_topology": "the host NUMA topology",
    "supported_hv_specs": "the (architecture, hypervisor, VM mode) "
                          "triples the host supports",
    "supported_instances": "the (architecture, hypervisor, VM mode) "
                           "triples the host supports",
    "pci_device_pools": "the host's PCI device pools",
    "pci_stats": "the host's PCI device statistics",
    "limits": "the host's resource limits",
    "instances": "the instances on the host",
}

# Keys of the libvirt driver's cpu_info JSON (nova/virt/libvirt/driver.py
# _get_cpu_info), described as capabilities:cpu_info:<path>.
CPU_INFO_KEYS: Dict[str, str] = {
    "arch": "the host CPU architecture, e.g. x86_64 or aarch64",
    "model": "the host CPU model name libvirt reports, e.g. Icelake-Server",
    "vendor": "the host CPU vendor, e.g. Intel or AMD",
    "features": "the host CPU feature flags (use <all-in> or <in>, e.g. "
                "'<all-in> aes avx2')",
    "topology:sockets": "the host's CPU sockets",
    "topology:cores": "the host's cores per socket",
    "topology:threads": "the host's threads per core",
    "topology:cells": "the host's NUMA cells",
}

QUOTA_LIBVIRT_TEXT: Dict[str, Text] = {
    "cpu_shares": Text(
        "CPU shares",
        "Relative CPU weight of the instance against the host's other "
        "instances (no unit: 2048 gets twice the CPU time of 1024 under "
        "contention); unset leaves the host's default. Only the libvirt "
        "driver reads it."),
    "cpu_period": Text(
        "CPU period (µs)",
        "Length in microseconds of the enforcement period of "
        "quota:cpu_quota (useful range 1000 to 1000000; 0 means unset). "
        "Only the libvirt driver reads it."),
    "cpu_quota": Text(
        "CPU quota (µs)",
        "CPU time in microseconds each vCPU may use per quota:cpu_period, "
        "e.g. period 100000 and quota 50000 cap a vCPU at half a host CPU; "
        "a negative value means unlimited (useful range 1000 and up). Only "
        "the libvirt driver reads it."),
}

QUOTA_VMWARE_UNITS: Dict[str, Tuple[str, str]] = {
    # key: (what, unit)
    "cpu": ("CPU", "MHz"),
    "memory": ("memory", "MB"),
    "disk_io": ("disk I/O", "I/O operations per second"),
    "vif": ("network interface bandwidth", "Mbit/s"),
}

AGGREGATE_TEXT: Dict[str, Text] = {
    "availability_zone": Text(
        "Availability zone",
        "Name of the availability zone the aggregate's hosts form; users "
        "pick it with --availability-zone. A host can be in one zone only. "
        "Printable characters except ':', no leading or trailing space."),
    "filter_tenant_id": Text(
        "Projects allowed on these hosts",
        "Project IDs, separated by commas, that may boot on the aggregate's "
        "hosts with the AggregateMultiTenancyIsolation filter; any key "
        "starting with filter_tenant_id counts (filter_tenant_id2...). "
        "[scheduler] limit_tenants_to_placement_aggregate reads the same "
        "keys but needs one project ID per key."),
    "instance_type": Text(
        "Flavors allowed on these hosts",
        "Flavor names, separated by commas, that may boot on the "
        "aggregate's hosts with the AggregateTypeAffinityFilter; other "
        "flavors are refused there."),
    "max_io_ops_per_host": Text(
        "Maximum concurrent I/O operations per host",
        "With the AggregateIoOpsFilter: a host of the aggregate takes no "
        "new instance while this many instances on it are building, "
        "resizing, snapshotting, migrating, rescuing or unshelving. "
        "Overrides [filter_scheduler] max_io_ops_per_host."),
    "max_instances_per_host": Text(
        "Maximum instances per host",
        "With the AggregateNumInstancesFilter: a host of the aggregate "
        "takes no new instance once it has this many. Overrides "
        "[filter_scheduler] max_instances_per_host."),
}

# Weigher multipliers nova lets an aggregate override: what a positive
# value favours.  The key is the metadata key; the option is found by the
# generator from nova's own options.
WEIGHER_TEXT: Dict[str, Tuple[str, str]] = {
    "ram_weight_multiplier": (
        "RAM weigher multiplier",
        "positive values spread instances to hosts with more free memory, "
        "negative values stack them"),
    "cpu_weight_multiplier": (
        "CPU weigher multiplier",
        "positive values spread instances to hosts with more free vCPUs, "
        "negative values stack them"),
    "disk_weight_multiplier": (
        "Disk weigher multiplier",
        "positive values spread instances to hosts with more free disk, "
        "negative values stack them"),
    "io_ops_weight_multiplier": (
        "I/O operations weigher multiplier",
        "negative values prefer hosts with fewer instances in I/O-heavy "
        "tasks, positive values prefer busier hosts"),
    "num_instances_weight_multiplier": (
        "Instance count weigher multiplier",
        "positive values prefer hosts with more instances (packing), "
        "negative values hosts with fewer"),
    "pci_weight_multiplier": (
        "PCI weigher multiplier",
        "positive values keep hosts with PCI devices for instances that "
        "need them"),
    "image_props_weight_multiplier": (
        "Image properties weigher multiplier",
        "positive values prefer hosts already running instances whose "
        "images have the same properties"),
    "hypervisor_version_weight_multiplier": (
        "Hypervisor version weigher multiplier",
        "positive values prefer hosts with a newer hypervisor, negative "
        "values older ones"),
    "soft_affinity_weight_multiplier": (
        "Soft affinity weigher multiplier",
        "how strongly members of a soft-affinity server group are kept "
        "together"),
    "soft_anti_affinity_weight_multiplier": (
        "Soft anti-affinity weigher multiplier",
        "how strongly members of a soft-anti-affinity server group are "
        "kept apart"),
    "build_failure_weight_multiplier": (
        "Build failure weigher multiplier",
        "how strongly hosts with recent failed builds are avoided"),
    "cross_cell_move_weight_multiplier": (
        "Cross-cell move weigher multiplier",
        "positive values keep a moved instance in its own cell, negative "
        "values prefer other cells"),
    "metrics_weight_multiplier": (
        "Metrics weigher multiplier",
        "weight of the host metrics of [metrics] weight_setting"),
}


def resource_text(resource_class: str) -> Text:
    what, note = RESOURCE_GLOSS.get(resource_class, ("", ""))
    text = ("Units of placement resource class %s%s the instance requests."
            % (resource_class, " (%s)" % what if what else ""))
    if note:
        text += " " + note
    return Text(
        "Resource %s" % resource_class,
        text + " resources<group>:%s asks for it in a numbered request "
        "group (same values)." % resource_class)


def trait_text(trait: str) -> Text:
    return Text(
        "Trait %s" % trait,
        "required: schedule only to hosts whose resource provider has the "
        "trait %s; forbidden: only to hosts without it. trait<group>:%s "
        "does the same in a numbered request group." % (trait, trait))


def capability_text(name: str) -> Text:
    head, _, path = name.partition(":")
    if path:
        gloss = CPU_INFO_KEYS[path]
        return Text("Host CPU %s" % path.replace(":", " "),
                    "Compare %s (from the libvirt driver's cpu_info) with "
                    "the value; needs the ComputeCapabilitiesFilter." % gloss)
    gloss = CAPABILITY_GLOSS.get(head, "the host's %s" % head)
    return Text("Host %s" % head.replace("_", " "),
                "Compare %s, as the scheduler sees the host, with the value "
                "(a literal or an operator expression, see the namespace); "
                "needs the ComputeCapabilitiesFilter." % gloss)


def quota_text(name: str) -> Optional[Text]:
    """Text of a quota:<name> spec, or None if no template fits."""
    if name in QUOTA_LIBVIRT_TEXT:
        return QUOTA_LIBVIRT_TEXT[name]
    for key, (what, unit) in QUOTA_VMWARE_UNITS.items():
        if name == key + "_limit":
            return Text("VMware %s limit (%s)" % (what, unit),
                        "Upper limit of %s in %s even when more is free; 0 "
                        "means no limit. Only the VMware driver reads it."
                        % (what, unit))
        if name == key + "_reservation":
            return Text("VMware %s reservation (%s)" % (what, unit),
                        "Amount of %s in %s guaranteed to the instance. "
                        "Only the VMware driver reads it." % (what, unit))
        if name == key + "_shares_level":
            return Text("VMware %s shares level" % what,
                        "Share level of %s under contention: low, normal, "
                        "high, or custom with the number in "
                        "quota:%s_shares_share. Only the VMware driver "
                        "reads it." % (what, key))
        if name == key + "_shares_share":
            return Text("VMware %s shares" % what,
                        "Number of %s shares when quota:%s_shares_level is "
                        "custom (relative to other instances; no unit). "
                        "Only the VMware driver reads it." % (what, key))
    for stat in ("read", "write", "total"):
        for metric, unit in (("bytes", "bytes"), ("iops", "I/O operations")):
            if name == "disk_%s_%s_sec" % (stat, metric):
                what = "reads and writes" if stat == "total" else stat + "s"
                return Text("Disk %s %s per second" % (stat, metric),
                            "Limit on %s of each disk, in %s per second; 0 "
                            "or unset means no limit. Only the libvirt "
                            "driver reads it." % (what, unit))
    for direction, way in (("inbound", "received"), ("outbound", "sent")):
        for metric, unit in (("average", "average rate in KiB/s"),
                             ("peak", "peak rate in KiB/s"),
                             ("burst", "burst size in KiB at peak rate")):
            if name == "vif_%s_%s" % (direction, metric):
                return Text("Interface %s %s" % (direction, metric),
                            "Limit on the traffic each network interface "
                            "has %s: %s. Only the libvirt driver reads it, "
                            "for interface types that support bandwidth "
                            "limits." % (way, unit))
    return None
