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

"""Stand-ins for what Glance hands an import plugin, shared by the unit
tests of every plugin.

The image and the action wrapper are doubles (a real one needs Glance's
database and an import lock); the actions themselves are Glance's real
``_ImportActions``, so status transitions and the ``os_glance*`` rules are
Glance's own. The functional tests run the plugins in a real glance-api.
"""

from glance.async_.flows.api_image_import import _ImportActions
from taskflow import task

IMAGE_ID = "11111111-2222-3333-4444-555555555555"


class FakeImage:
    """An image in ``importing`` to the store ``fs``."""

    def __init__(self, disk_format: str, **props: str) -> None:
        self.image_id = IMAGE_ID
        self.status = "importing"
        self.disk_format = disk_format
        self.container_format = "bare"
        self.visibility = "shared"
        self.size = self.virtual_size = None
        self.locations = []
        self.extra_properties = {"os_glance_importing_to_stores": "fs",
                                 "os_glance_failed_import": ""}
        self.extra_properties.update(props)


class FakeActionWrapper:
    """``with wrapper as action`` yields Glance's real import actions."""

    def __init__(self, image: FakeImage) -> None:
        self.image = image
        self.image_id = image.image_id

    def __enter__(self) -> _ImportActions:
        return _ImportActions(self.image)

    def __exit__(self, *exc) -> bool:
        return False


class StagedData(task.Task):
    """Stands for Glance's ``_VerifyStaging``: the task that provides the
    staged file as ``file_path`` (a plugin that provides a new one then
    wins for the tasks after it, as in Glance's flow)."""

    def __init__(self, path: str) -> None:
        super().__init__(name="staged-data", provides="file_path")
        self.path = path

    def execute(self) -> str:
        return "file://" + self.path
