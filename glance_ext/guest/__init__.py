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

"""Guest inspection: what OS an image holds, and the Image Guide checks.

``inspect_guest(path, disk_format)`` is the entry point for
``glance-ext inspect`` and the inject plugin. It reads the image
in a resource-limited worker process (see ``worker``) and returns a
``GuestReport``.
"""

import os

from glance_ext.guest.report import GuestReport
from glance_ext.exceptions import GuestInspectionError

__all__ = ["GuestReport", "GuestInspectionError", "inspect_guest",
           "SUPPORTED_FORMATS"]

# Kept in step with disk.SUPPORTED_FORMATS (a unit test checks); not
# imported from there so that the worker process, which imports this
# package first, starts without oslo.config.
SUPPORTED_FORMATS = frozenset(("raw", "iso", "gpt", "ami", "qcow2", "vmdk",
                               "vhd", "vhdx", "vdi"))


def inspect_guest(path: str, disk_format: str,
                  conf=None) -> GuestReport:
    """Inspect the guest in ``path`` (a Glance ``disk_format``).

    Problems of the image (unreadable filesystem, limits hit) are reported
    in the result (``report.ok`` is False, ``report["error"]`` says why);
    only a wrong request raises ``GuestInspectionError``. ``conf`` is an
    oslo.config ``ConfigOpts`` (``[glance_ext_guest]``); None means the
    defaults.
    """
    from glance_ext.guest import options

    if not os.path.isfile(path):
        raise GuestInspectionError("%s is not a readable file" % path)
    if disk_format not in SUPPORTED_FORMATS:
        raise GuestInspectionError(
            "disk_format %r cannot be inspected; use one of %s"
            % (disk_format, ", ".join(sorted(SUPPORTED_FORMATS))))
    if conf is None:
        conf = options.standalone_conf()
    else:
        options.register_opts(conf)
    # Imported here so that ``python -m glance_ext.guest.worker`` does not
    # find the module already imported by its own package.
    from glance_ext.guest import worker
    settings = worker.WorkerSettings.from_conf(conf[options.GROUP])
    data = worker.run(path, disk_format, settings)
    if (data.get("os") or {}).get("os_type") in ("linux", "windows"):
        # osinfo-db is a trusted system file: read here, not in the worker.
        from glance_ext.guest import eol
        data["eol"] = eol.lookup(data["os"].get("osinfo_id"),
                                 conf[options.GROUP].osinfo_db_dir).to_dict()
    return GuestReport(data)
