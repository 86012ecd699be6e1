#!/usr/bin/env python3
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

"""`make demo`: a local Glance with every glance_ext plugin, real imports.

Starts glance-api with `glance-ext local-glance up --plugins all`, builds
sample images with qemu-img, imports them with the real `glance` CLI
through glance-direct and web-download (from a loopback HTTP server this
script runs), and prints what each image ended as. Glance keeps running
afterwards so you can try it yourself.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

from glance_ext.local_glance import client
from glance_ext.testing.guest import disks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Image fields every Glance has; anything else on an image the demo
# created without properties was set by an import plugin.
CORE_FIELDS = {
    "checksum", "container_format", "created_at", "direct_url",
    "disk_format", "file", "id", "locations", "min_disk", "min_ram", "name",
    "os_hash_algo", "os_hash_value", "os_hidden", "owner", "protected",
    "schema", "self", "size", "status", "stores", "tags", "updated_at",
    "virtual_size", "visibility",
}


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img"] + list(args), check=True,
                   stdout=subprocess.DEVNULL)


def build_images(directory: str) -> dict:
    """A few small, real images: raw with data, and qcow2/vmdk from it."""
    os.makedirs(directory, exist_ok=True)
    raw = os.path.join(directory, "cirros-like.raw")
    with open(raw, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
        fh.seek(1024 * 1024)
        fh.write(os.urandom(2 * 1024 * 1024))
    images = {"raw": raw}
    for fmt in ("qcow2", "vmdk"):
        path = os.path.join(directory, "cirros-like.%s" % fmt)
        qemu_img("convert", "-f", "raw", "-O", fmt, raw, path)
        images[fmt] = path
    # CVE-2022-47951's class: a qcow2 whose backing file is a host path.
    evil = os.path.join(directory, "evil-backing.qcow2")
    qemu_img("create", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw",
             evil, "64M")
    images["evil"] = evil
    return images


def plugin_properties(image: dict) -> dict:
    return {k: v for k, v in sorted(image.items())
            if k not in CORE_FIELDS and not k.startswith("os_glance")}


def show(glance: client.LocalGlance, label: str, image_id: str) -> None:
    image = glance.wait_import(image_id, timeout=300)
    tasks = glance.tasks(image_id)
    message = tasks[0].get("Message", "") if tasks else ""
    print("\n== %s  (%s)" % (label, image_id))
    print("   status=%s disk_format=%s size=%s virtual_size=%s"
          % (image["status"], image["disk_format"], image["size"],
             image["virtual_size"]))
    if message:
        print("   task message: %s" % message)
    props = plugin_properties(image)
    if props:
        print("   properties set by glance_ext:")
        for key, value in props.items():
            print("     %s = %s" % (key, value))
    else:
        print("   properties set by glance_ext: (none)")


def section(title: str) -> None:
    print("\n" + "=" * 72 + "\n" + title + "\n" + "=" * 72)


def demo_validate(glance: client.LocalGlance, images: dict) -> None:
    """One good and one malicious image through glance_ext_validate."""
    section("glance_ext_validate: the same engine offline and in Glance")
    for name in ("qcow2", "evil"):
        proc = client.run([client.GLANCE_EXT, "inspect", images[name]],
                          check=False)
        print("$ glance-ext inspect %s   -> exit %d"
              % (os.path.basename(images[name]), proc.returncode))
        wanted = ("verdict:", "detected format:", "bytes read:", "  - [")
        print("   " + "\n   ".join(
            line for line in proc.stdout.strip().splitlines()
            if line.startswith(wanted)))
    image_id = glance.import_file(images["evil"], "qcow2",
                                  name="demo-evil-backing-file")
    show(glance, "glance-direct evil-backing.qcow2 (backing file "
         "/etc/passwd)", image_id)
    print("   staged files left: %s" % (glance.staged_files() or "none"))


def demo_convert(glance: client.LocalGlance, images_dir: str) -> None:
    """A qcow2 and a streamOptimized vmdk converted for the file store,
    with the progress glance_ext_convert reports while qemu-img runs."""
    section("glance_ext_convert: converted for the file store, with progress")
    raw = os.path.join(images_dir, "big.raw")
    with open(raw, "wb") as fh:
        fh.truncate(1024 * 1024 * 1024)
        for offset in range(0, 256, 8):
            fh.seek(offset * 4 * 1024 * 1024)
            fh.write(os.urandom(8 * 1024 * 1024))
    sources = {"qcow2": os.path.join(images_dir, "big.qcow2"),
               "vmdk": os.path.join(images_dir, "big-stream.vmdk")}
    qemu_img("convert", "-f", "raw", "-O", "qcow2", raw, sources["qcow2"])
    qemu_img("convert", "-f", "raw", "-O", "vmdk", "-o",
             "subformat=streamOptimized", raw, sources["vmdk"])
    os.unlink(raw)
    for fmt, path in sources.items():
        image_id = glance.import_file(path, fmt, name="demo-convert-%s" % fmt)
        show(glance, "glance-direct %s (%d MiB file)"
             % (os.path.basename(path), os.path.getsize(path) // 2 ** 20),
             image_id)
        print("   progress (task message while qemu-img ran):")
        with open(glance.log_path, errors="replace") as log:
            for line in log:
                if "Image %s: glance_ext_convert:" % image_id in line:
                    print("     " + line.split("Image %s: " % image_id)[1]
                          .rstrip())


def demo_inject(glance: client.LocalGlance, images_dir: str) -> None:
    """Linux guests through glance_ext_inject: what it found inside and
    how each image fares against the Image Guide checks."""
    section("glance_ext_inject: properties discovered inside the guest")
    cases = [("ubuntu-gpt", "qcow2", "demo-ubuntu-22.04"),
             ("debian-dirty-mbr", "qcow2", "demo-debian-12-not-generalised")]
    for spec_name, container, name in cases:
        built = disks.image(disks.SPECS[spec_name], container)
        path = os.path.join(images_dir, "%s.%s" % (spec_name, container))
        shutil.copyfile(built, path)
        image_id = glance.import_file(path, disks.disk_format_of(container),
                                      name=name)
        image = glance.wait_import(image_id, timeout=300)
        print("\n$ glance image-create-via-import --disk-format %s --name %s"
              " < %s\n   status=%s disk_format=%s"
              % (disks.disk_format_of(container), name,
                 os.path.basename(path), image["status"],
                 image["disk_format"]))
        set_keys = image.get("glance_ext_inject_properties", "")
        print("   discovered and set:")
        for key in [k for k in set_keys.split(",") if k]:
            print("     %s = %s" % (key, image.get(key)))
        print("   Image Guide checks:")
        for key in sorted(image):
            if key.startswith("glance_ext_inject_check_"):
                print("     %-24s %s" % (key[len("glance_ext_inject_check_"):],
                                         image[key]))
        print("   failed: %s" % image.get("glance_ext_inject_checks_failed"))


def demo_metadefs(glance: client.LocalGlance, state_dir: str) -> None:
    """Load the catalog, then one refused and one accepted update."""
    section("metadefs: the catalog, loaded with glance-manage, enforced")
    conf = os.path.join(state_dir, "etc", "glance-api.conf")
    # The catalog as installed with glance_ext (what an operator has).
    catalog_dir = client.run([client.GLANCE_EXT, "metadefs",
                              "path"]).stdout.strip()
    client.run([os.path.join(client.BIN_DIR, "glance-manage"),
                "--config-file", conf, "db", "load_metadefs", "--path",
                catalog_dir])
    listing = glance.glance("md-namespace-list").stdout
    ours = [line.strip("| ") for line in listing.splitlines()
            if "GlanceExt::" in line]
    print('$ glance-manage db load_metadefs --path "$(glance-ext metadefs '
          'path)"  -> namespaces: %s' % ", ".join(ours))
    image_id = client.parse_table(glance.glance(
        "image-create", "--name", "demo-metadefs", "--disk-format", "qcow2",
        "--container-format", "bare").stdout)["id"]
    time.sleep(2.5)  # the filter re-reads the catalog every 2 s here
    bad = glance.glance("image-update", image_id, "--property",
                        "hw_cpu_policy=bogus", check=False)
    print("$ glance image-update %s --property hw_cpu_policy=bogus\n"
          "   refused (exit %d): %s" % (image_id, bad.returncode,
                                        " ".join(bad.stderr.split())))
    glance.glance("image-update", image_id, "--property",
                  "hw_cpu_policy=mixed")
    print("$ glance image-update %s --property hw_cpu_policy=mixed\n"
          "   accepted: hw_cpu_policy=%s"
          % (image_id, glance.image(image_id)["hw_cpu_policy"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", default=".state/demo")
    args = parser.parse_args()
    state_dir = os.path.abspath(args.state_dir)

    # A fresh Glance every run.
    subprocess.run([client.GLANCE_EXT, "local-glance", "down",
                    "--state-dir", state_dir, "--purge"],
                   stdout=subprocess.DEVNULL, check=True)
    images = build_images(os.path.join(state_dir + "-images"))
    www = client.HTTPServer(os.path.dirname(images["raw"]))
    print("building and importing sample images; Glance starts at "
          "%s" % state_dir)
    try:
        glance = client.start_local_glance(
            state_dir, plugins=["all"], web_download_port=www.port,
            paste_filters=["glance_ext.middleware:filter_factory"],
            api_options={"glance_ext_metadefs.refresh_interval": "2"},
            import_options={
                "glance_ext_convert.progress_interval_seconds": "0.2"})
        print("glance-api at %s, plugins: %s"
              % (glance.url, ", ".join(glance.info["plugins"]) or "(none)"))
        section("imports with every glance_ext plugin")
        started = time.monotonic()
        for fmt in ("qcow2", "raw", "vmdk"):
            image_id = glance.import_file(images[fmt], fmt,
                                          name="demo-direct-%s" % fmt)
            show(glance, "glance-direct %s" % os.path.basename(images[fmt]),
                 image_id)
        image_id = glance.web_download(
            www.url_for(os.path.basename(images["qcow2"])), "qcow2",
            name="demo-web-download-qcow2")
        show(glance, "web-download %s" % www.url_for("cirros-like.qcow2"),
             image_id)
        print("\nimports took %.1fs" % (time.monotonic() - started))
        demo_validate(glance, images)
        demo_convert(glance, os.path.dirname(images["raw"]))
        demo_inject(glance, os.path.dirname(images["raw"]))
        demo_metadefs(glance, state_dir)
    finally:
        www.close()
    glance_cli = os.path.join(client.BIN_DIR, "glance")
    print("""
Glance is still running. Use it with the real CLI:
  export OS_IMAGE_URL=%s
  export OS_AUTH_TOKEN=%s
  %s image-list
Stop it with:  make demo-down
  (or %s local-glance down --state-dir %s)"""
          % (glance.url, glance.token, os.path.relpath(glance_cli, ROOT),
             os.path.relpath(client.GLANCE_EXT, ROOT), args.state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
