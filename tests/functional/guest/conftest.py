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

"""The diskimage-builder image, built once per test run and shared."""

import os

import pytest

from glance_ext import testing
from glance_ext.testing.guest import dib


@pytest.fixture(scope="session")
def dib_build(tmp_path_factory):
    """The Build of a Debian 12 diskimage-builder image (both formats).

    Reused from ``$GLANCE_EXT_DIB_IMAGES`` when a complete build is there;
    otherwise built now (about five minutes here). Under CI a machine that
    cannot build fails the test: CI is meant to have what it needs.
    """
    out = os.environ.get("GLANCE_EXT_DIB_IMAGES") or str(
        tmp_path_factory.mktemp("dib"))
    why = dib.missing()
    if why:
        testing.needs("cannot build the diskimage-builder image: %s "
                      "(tools/install-system-deps.sh --dib)" % why)
    return dib.cached(out) or dib.build(out)
