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

"""Removing what glance_ext wrote, the one way every layer does it."""

import os

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def unlink_quietly(path: str, what: str = "") -> None:
    """Delete ``path``; already gone is fine, any other failure is logged
    (a clean-up never hides the error that caused it). ``what`` names the
    file in the log ("the stream ", "partial conversion output ")."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        LOG.error("Could not delete %s%s: %s", what, path, exc)
