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

"""The OpenStack Virtual Machine Image Guide's requirements, as checks.

Each check has a stable id (for automation and, later, image properties),
a severity (``error``: instances will misbehave; ``warning``: a feature
will not work; ``info``: recommended) and the evidence it looked at, so an
operator can see WHY an image passed or failed without trusting the tool.
Status is ``pass``, ``fail``, ``unknown`` (could not be determined, e.g.
the root filesystem is unreadable) or ``n/a``.
"""

import dataclasses
import enum
import re
from typing import Any, Callable, Dict, List, Optional

from glance_ext.guest import guesttree

WANTS_DIRS = ("/etc/systemd/system/multi-user.target.wants",
              "/etc/systemd/system/sockets.target.wants",
              "/etc/systemd/system/cloud-init.target.wants",
              "/etc/systemd/system/sysinit.target.wants",
              "/etc/systemd/system/basic.target.wants",
              "/etc/systemd/system/network-online.target.wants")
SYSV_DIRS = ("/etc/rc2.d", "/etc/rc3.d", "/etc/rc.d/rc3.d")
_HWADDR = re.compile(r"^\s*HWADDR\s*=", re.M)
_CONSOLE = re.compile(r"console=ttyS0\b")


class CheckStatus(str, enum.Enum):
    """The result of one check, in the order reports list them."""

    FAIL = "fail"
    UNKNOWN = "unknown"
    PASS = "pass"
    NOT_APPLICABLE = "n/a"

    def __str__(self) -> str:
        return self.value


class Severity(str, enum.Enum):
    """How much a failed check matters, most first."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass
class Check:
    """One Image Guide check and what the engine found.

    It crosses the worker's process boundary as JSON (``to_dict``,
    ``from_dict``); item access reads that JSON shape, for the readers of
    a report dict.
    """

    id: str
    title: str
    severity: Severity
    status: CheckStatus
    evidence: List[str]

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)
        self.status = CheckStatus(self.status)

    @property
    def failed(self) -> bool:
        return self.status is CheckStatus.FAIL

    def to_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "title": self.title,
                "severity": self.severity.value,
                "status": self.status.value,
                "evidence": list(self.evidence)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Check":
        return cls(id=data["id"], title=data.get("title", ""),
                   severity=data["severity"], status=data["status"],
                   evidence=list(data.get("evidence") or ()))

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)


@dataclasses.dataclass
class Context:
    """What the checks may look at besides the guest files."""

    tree: guesttree.GuestTree
    os_type: str
    root_is_last: Optional[bool]
    root_on_lvm: bool
    root_fs_type: Optional[str]


def _first_existing(tree, paths) -> Optional[str]:
    return next((p for p in paths if tree.is_file(p)), None)


def enabled_unit(tree: guesttree.GuestTree, units) -> Optional[str]:
    """The ``*.wants`` link that enables one of ``units``, if any.

    The link must resolve (inside the guest) to a unit file: a dangling
    link enables nothing.
    """
    for wants in WANTS_DIRS:
        for unit in units:
            link = "%s/%s" % (wants, unit)
            if tree.is_file(link):
                return link
    for rcdir in SYSV_DIRS:
        for name in tree.listdir(rcdir):
            if name.startswith("S") and any(
                    name[3:] == u.split(".")[0] for u in units):
                return "%s/%s" % (rcdir, name)
    return None


def check_cloud_init(ctx: Context) -> Check:
    t = ctx.tree
    binary = _first_existing(t, ("/usr/bin/cloud-init",
                                 "/usr/local/bin/cloud-init"))
    cfg = "/etc/cloud/cloud.cfg" if t.is_file("/etc/cloud/cloud.cfg") \
        else None
    disabled = t.exists("/etc/cloud/cloud-init.disabled")
    ev = ["cloud-init binary: %s" % (binary or "absent"),
          "/etc/cloud/cloud.cfg: %s" % ("present" if cfg else "absent")]
    if disabled:
        ev.append("/etc/cloud/cloud-init.disabled exists")
    ok = bool(binary and cfg and not disabled)
    return Check("cloud-init", "cloud-init installed and configured",
                 "error", "pass" if ok else "fail", ev)


def check_growpart(ctx: Context) -> Check:
    found = _first_existing(ctx.tree, ("/usr/bin/growpart",
                                       "/usr/sbin/growpart"))
    return Check("growpart", "growpart available to grow the root "
                 "partition", "warning", "pass" if found else "fail",
                 ["growpart: %s" % (
                     found or "absent (cloud-utils-growpart / "
                              "cloud-guest-utils)")])


def check_persistent_net(ctx: Context) -> Check:
    t = ctx.tree
    ev, bad = [], False
    rules = "/etc/udev/rules.d/70-persistent-net.rules"
    st = t.stat(rules) if t.exists(rules) else None
    if st is None:
        ev.append("%s: absent" % rules)
    elif st.size == 0:
        ev.append("%s: empty" % rules)
    else:
        text = t.read_text(rules) or ""
        live = [ln for ln in text.splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
        if live:
            bad = True
            ev.append("%s: %d rule(s), e.g. %s" % (rules, len(live),
                                                   live[0][:120]))
        else:
            ev.append("%s: comments only" % rules)
    for d in ("/etc/sysconfig/network-scripts", "/etc/sysconfig/network"):
        for name in t.listdir(d):
            if not name.startswith("ifcfg-"):
                continue
            text = t.read_text("%s/%s" % (d, name), 64 * 1024) or ""
            if _HWADDR.search(text):
                bad = True
                ev.append("%s/%s sets HWADDR" % (d, name))
            else:
                ev.append("%s/%s: no HWADDR" % (d, name))
    return Check("persistent-net", "no MAC addresses pinned to interfaces",
                 "error", "fail" if bad else "pass", ev)


def check_ssh_server(ctx: Context) -> Check:
    t = ctx.tree
    sshd = _first_existing(t, ("/usr/sbin/sshd", "/usr/bin/sshd"))
    link = enabled_unit(t, ("ssh.service", "sshd.service", "ssh.socket",
                            "sshd.socket"))
    ev = ["sshd: %s" % (sshd or "absent"),
          "enabled by: %s" % (link or "no systemd/SysV link")]
    return Check("ssh-server", "an SSH server installed and enabled",
                 "error", "pass" if sshd and link else "fail", ev)


def check_serial_console(ctx: Context) -> Check:
    t = ctx.tree
    paths = ["/etc/default/grub", "/boot/grub/grub.cfg",
             "/boot/grub2/grub.cfg", "/etc/kernel/cmdline"]
    paths += ["/etc/default/grub.d/" + n for n in
              sorted(t.listdir("/etc/default/grub.d")) if n.endswith(".cfg")]
    paths += ["/boot/loader/entries/" + n for n in
              sorted(t.listdir("/boot/loader/entries"))
              if n.endswith(".conf")]
    ev, found = [], None
    for path in paths:
        text = t.read_text(path)
        if text is None:
            continue
        if _CONSOLE.search(text):
            found = path
            ev.append("%s: console=ttyS0" % path)
            break
        ev.append("%s: no console=ttyS0" % path)
    if not ev:
        return Check("serial-console", "kernel console on ttyS0 (nova "
                     "console log)", "warning", "unknown",
                     ["no grub configuration or kernel command line found"])
    return Check("serial-console", "kernel console on ttyS0 (nova console "
                 "log)", "warning", "pass" if found else "fail", ev)


HOST_KEY_TYPES = ("rsa", "dsa", "ecdsa", "ed25519")


def check_ssh_host_keys(ctx: Context) -> Check:
    # The usual names are looked up one by one, so a crafted /etc/ssh with
    # more entries than the listing bound cannot hide them.
    keys = {"ssh_host_%s_key" % k for k in HOST_KEY_TYPES
            if ctx.tree.exists("/etc/ssh/ssh_host_%s_key" % k)}
    keys.update(n for n in ctx.tree.listdir("/etc/ssh")
                if n.startswith("ssh_host_") and n.endswith("_key"))
    ev = ["/etc/ssh/%s present" % n for n in sorted(keys)] or \
        ["no /etc/ssh/ssh_host_*_key"]
    return Check("ssh-host-keys", "no SSH host keys (every instance would "
                 "share them)", "error", "fail" if keys else "pass", ev)


def check_machine_id(ctx: Context) -> Check:
    t = ctx.tree
    text = t.read_text("/etc/machine-id", 4096)
    value = (text or "").strip()
    ok = value in ("", "uninitialized")
    ev = ["/etc/machine-id: %s" % ("absent" if text is None else
                                   ("empty" if not value else
                                    repr(value[:40])))]
    return Check("machine-id", "empty machine-id (image generalised)",
                 "warning", "pass" if ok else "fail", ev)


def check_firewall(ctx: Context) -> Check:
    t = ctx.tree
    ev, bad = [], False
    link = enabled_unit(t, ("firewalld.service", "iptables.service",
                            "ip6tables.service", "ufw.service"))
    if link:
        ev.append("enabled by %s" % link)
        bad = True
    ufw = t.read_text("/etc/ufw/ufw.conf", 16 * 1024)
    if ufw is not None:
        on = re.search(r"^\s*ENABLED\s*=\s*yes", ufw, re.M | re.I)
        ev.append("/etc/ufw/ufw.conf: ENABLED=%s" % ("yes" if on else "no"))
        bad = bad or bool(on)
    if not ev:
        ev.append("no firewalld/iptables/ufw service enabled")
    return Check("firewall", "guest firewall disabled (security groups "
                 "filter traffic)", "warning", "fail" if bad else "pass", ev)


def check_acpi(ctx: Context) -> Check:
    t = ctx.tree
    acpid = _first_existing(t, ("/usr/sbin/acpid", "/sbin/acpid"))
    logind = _first_existing(t, ("/usr/lib/systemd/systemd-logind",
                                 "/lib/systemd/systemd-logind"))
    ev = ["acpid: %s" % (acpid or "absent"),
          "systemd-logind: %s" % (logind or "absent")]
    return Check("acpi", "ACPI power events handled (acpid or systemd)",
                 "warning", "pass" if acpid or logind else "fail", ev)


def check_qemu_guest_agent(ctx: Context) -> Check:
    found = _first_existing(ctx.tree, ("/usr/bin/qemu-ga",
                                       "/usr/sbin/qemu-ga"))
    return Check("qemu-guest-agent", "qemu-guest-agent installed", "info",
                 "pass" if found else "fail",
                 ["qemu-ga: %s" % (found or "absent")])


def check_root_last(ctx: Context) -> Check:
    ev = []
    if ctx.root_is_last is None:
        return Check("root-last", "root filesystem last on the disk and "
                     "growable", "warning", "unknown",
                     ["root filesystem position unknown"])
    ev.append("root filesystem is %s on the disk"
              % ("last" if ctx.root_is_last else "NOT last"))
    growpart = _first_existing(ctx.tree, ("/usr/bin/growpart",
                                          "/usr/sbin/growpart"))
    ok = ctx.root_is_last
    if ctx.root_on_lvm:
        ev.append("root is on LVM; growpart %s" % ("present" if growpart
                                                   else "absent"))
        ok = ok and bool(growpart)
    if ctx.root_fs_type not in ("ext2", "ext3", "ext4", "xfs", "btrfs",
                                "ntfs"):
        ev.append("%s cannot be grown online" % ctx.root_fs_type)
        ok = False
    return Check("root-last", "root filesystem last on the disk and "
                 "growable", "warning", "pass" if ok else "fail", ev)


CLOUDBASE_INIT_DIRS = ("/Program Files/Cloudbase Solutions/Cloudbase-Init",
                       "/Program Files (x86)/Cloudbase Solutions/"
                       "Cloudbase-Init")


def check_cloudbase_init(ctx: Context) -> Check:
    t = ctx.tree
    ev, ok = [], False
    for base in CLOUDBASE_INIT_DIRS:
        conf = base + "/conf/cloudbase-init.conf"
        if t.is_file(conf):
            ok = True
            ev.append("%s present" % conf)
            break
    if not ok:
        ev.append("no Cloudbase-Init installation under Program Files")
    return Check("cloud-init", "cloudbase-init installed and configured",
                 "error", "pass" if ok else "fail", ev)


WINDOWS_CHECKS: List[Callable[[Context], Check]] = [
    check_cloudbase_init, check_root_last]

LINUX_CHECKS: List[Callable[[Context], Check]] = [
    check_cloud_init, check_growpart, check_persistent_net,
    check_ssh_server, check_serial_console, check_ssh_host_keys,
    check_machine_id, check_firewall, check_acpi, check_qemu_guest_agent,
    check_root_last]


def run_checks(ctx: Context) -> List[Check]:
    """Every check for the guest's OS; a check that errors is ``unknown``."""
    out = []
    funcs = {"linux": LINUX_CHECKS, "windows": WINDOWS_CHECKS}.get(
        ctx.os_type, [])
    for func in funcs:
        before = len(ctx.tree.errors)
        try:
            check = func(ctx)
        except guesttree.GuestPathError as exc:
            name = func.__name__.replace("check_", "").replace("_", "-")
            out.append(Check(name, name, "warning", "unknown", [str(exc)]))
            continue
        failures = ctx.tree.errors[before:]
        if failures:
            # Something the check looked for could not be read: a "pass"
            # would be a guess. A "fail" stands on what was found.
            check.evidence += ["could not read: %s" % f[:200]
                               for f in failures[:3]]
            if check.status == "pass":
                check.status = CheckStatus.UNKNOWN
        out.append(check)
    return out
