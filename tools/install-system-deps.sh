#!/usr/bin/env bash
# Licensed under the Apache License, Version 2.0; see LICENSE.
#
# Installs the system packages glance_ext needs when they are missing:
#   always (the plugins, and `make demo`):
#   qemu-utils   (qemu-img, qemu-nbd)
#   libnbd-bin   (nbdcopy: raw outputs streamed into the store upload)
#   e2fsprogs dosfstools mtools fdisk
#                (the demo builds Ubuntu and Debian guest images with them)
#   with --test, what the test suites need on top:
#   postgresql   (server binaries: a throwaway cluster for concurrent imports)
#   osinfo-db    (libosinfo's database: the os_distro drift test of metadefs)
#   xfsprogs ntfs-3g lvm2 btrfs-progs
#                (the other guest-image builders of glance_ext/testing/guest/)
#   rpm          (rpmbuild and rpm --initdb: the rpm databases of the
#                package inventory tests)
#   etcd-server redis-server
#                (real coordination backends for the cluster-wide
#                conversion cap and the cache manager's election; the
#                tests start their own on loopback ports,
#                glance_ext/testing/servers.py)
#   with --dib, for the diskimage-builder image of the slow tests
#   (glance_ext/testing/guest/dib.py; diskimage-builder comes from PyPI):
#   debootstrap
#   with --slow, for the comparisons with libguestfs (slow tests, bench):
#   libguestfs-tools (about 1.1 GB)
#   linux-image-amd64 (supermin boots the appliance on a kernel of this
#                machine; a recommends of supermin, so not pulled in here)
# Uses apt-get as root; otherwise says exactly what to install and fails.
set -euo pipefail

want_test=0 want_dib=0 want_slow=0
for arg in "$@"; do
    case "$arg" in
    --test) want_test=1 ;;
    --dib) want_test=1; want_dib=1 ;;
    --slow) want_test=1; want_slow=1 ;;
    *) echo "usage: $0 [--test] [--dib] [--slow]" >&2; exit 2 ;;
    esac
done

missing=()
need() {   # need TOOL:PACKAGE ...: the package of each tool not found
    local pair tool pkg
    for pair in "$@"; do
        tool=${pair%%:*}; pkg=${pair#*:}
        PATH="$PATH:/sbin:/usr/sbin" command -v "$tool" >/dev/null 2>&1 \
            || missing+=("$pkg")
    done
}
need qemu-img:qemu-utils nbdcopy:libnbd-bin mke2fs:e2fsprogs mkfs.vfat:dosfstools \
    mcopy:mtools sfdisk:fdisk
if [ "$want_test" = 1 ]; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
            && ! command -v initdb >/dev/null 2>&1; then
        missing+=(postgresql)
    fi
    [ -d /usr/share/osinfo/os ] || missing+=(osinfo-db)
    need mkfs.xfs:xfsprogs mkntfs:ntfs-3g pvck:lvm2 mkfs.btrfs:btrfs-progs \
        rpmbuild:rpm etcd:etcd-server redis-server:redis-server
fi
if [ "$want_dib" = 1 ]; then
    need debootstrap:debootstrap
fi
if [ "$want_slow" = 1 ]; then
    command -v virt-inspector >/dev/null 2>&1 || missing+=(libguestfs-tools)
    ls /boot/vmlinuz-* >/dev/null 2>&1 || missing+=(linux-image-amd64)
fi
[ "${#missing[@]}" = 0 ] && exit 0

echo "installing system packages: ${missing[*]}"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: cannot install ${missing[*]} here (needs root and apt-get)." >&2
    echo "Install them with your package manager, for example:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged cluster; we only want the binaries.
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    service postgresql stop >/dev/null 2>&1 || true
fi
# The same for the packaged etcd and redis services: the tests start
# servers of their own on free ports.
if [[ " ${missing[*]} " == *" etcd-server "* ]]; then
    service etcd stop >/dev/null 2>&1 || true
fi
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    service redis-server stop >/dev/null 2>&1 || true
fi
command -v qemu-img >/dev/null
echo "installed: ${missing[*]}"
