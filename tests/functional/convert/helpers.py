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

"""Shared checks of the convert/decompress functional tests."""

import os
from typing import Dict, Optional

from glance_ext.testing import qemu_procs

OUR_PLUGINS = ["glance_ext_decompress", "glance_ext_validate",
               "glance_ext_convert"]


def import_options(lock_dir: str, **extra: str) -> Dict[str, str]:
    opts = {"glance_ext_convert.lock_dir": lock_dir,
            "glance_ext_convert.progress_interval_seconds": "0.3",
            "glance_ext_convert.free_space_reserve_mb": "16"}
    opts.update({k if "." in k else "glance_ext_convert." + k: v
                 for k, v in extra.items()})
    return opts


QEMU_DRIVER = {"vhd": "vpc", "iso": "raw", "gpt": "raw"}


def download(glance, image_id: str, dest: str) -> str:
    glance.glance("image-download", "--file", dest, image_id)
    return dest


def assert_stored_equals(glance, image: Dict, source: str,
                         source_driver: str, tmp_dir: str) -> None:
    """The bytes Glance serves are the source's guest data."""
    stored = download(glance, image["id"],
                      os.path.join(tmp_dir, image["id"] + ".stored"))
    assert os.path.getsize(stored) == image["size"]
    fmt = QEMU_DRIVER.get(image["disk_format"], image["disk_format"])
    assert qemu_procs.same_guest_data(source, source_driver, stored, fmt), \
        "stored data of %s differs from %s" % (image["id"], source)
    os.unlink(stored)


def ours_in_staging(glance, image_id: Optional[str] = None):
    """Files in staging that belong to ``image_id`` (or any image)."""
    names = glance.staged_files()
    return [n for n in names if image_id is None or n.startswith(image_id)]


def task_message(glance, image_id: str) -> str:
    tasks = sorted(glance.api_tasks(image_id),
                   key=lambda t: t.get("created_at", ""), reverse=True)
    return tasks[0]["message"] if tasks else ""


def assert_reverted(glance, image: Dict, text: str) -> None:
    """queued, stores failed, our reason in the task, staging clean."""
    assert image["status"] == "queued", image
    assert "fs" in image.get("os_glance_failed_import", ""), image
    assert not image.get("os_glance_importing_to_stores"), image
    message = task_message(glance, image["id"])
    assert text in message, message
    assert not ours_in_staging(glance, image["id"]), glance.staged_files()


def import_again(glance, image_id: str, path: str,
                 timeout: float = 120) -> Dict:
    """Stage ``path`` into a queued image, import it and wait."""
    glance.stage_and_import(image_id, path)
    return glance.wait_import(image_id, timeout=timeout)
