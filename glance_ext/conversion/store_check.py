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

"""Would Glance's own store-upload check refuse this file as it is?

Glance 33 inspects the data again while writing it to a store
(glance/location.py): the detected format must equal the image's
disk_format and oslo's safety checks must pass. Two valid images fail
there: a qcow2 with ``extended_l2`` (oslo treats the feature bit as
unknown) and a fixed VHD (oslo sees raw bytes). An import that needs no
format change would then fail after all our work; re-writing the image in
its own format (plain qcow2, dynamic VHD) makes it storable. The check
mirrors Glance's with the same library, so the two cannot disagree.
"""

from typing import Optional

from oslo_utils.imageutils import format_inspector as fi


def refusal(path: str, disk_format: str) -> Optional[str]:
    """Why Glance's upload check would refuse ``path`` stored as
    ``disk_format``, or None when it would accept it."""
    try:
        inspector = fi.detect_file_format(path)
    except fi.ImageFormatError as exc:
        text = str(exc)
        if disk_format == "iso" and "iso" in text and "gpt" in text:
            return None   # Glance stores an ISO+GPT hybrid as iso
        return "format detection failed (%s)" % text
    detected = str(inspector)
    if detected != disk_format and disk_format != "raw" and \
            not (disk_format == "iso" and detected == "gpt"):
        return "Glance detects %s, not %s" % (detected, disk_format)
    try:
        inspector.safety_check()
    except fi.SafetyCheckFailed as exc:
        if detected == "gpt":
            return None   # Glance treats GPT findings per its own config
        return "Glance's safety check fails (%s)" % ", ".join(
            sorted(exc.failures))
    except fi.ImageFormatError as exc:
        return "Glance's inspection fails (%s)" % exc
    return None
