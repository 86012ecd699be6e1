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

"""Writing an import task's message while a plugin works.

Glance itself only writes "Copied N MiB" during the store copy; during a
long decompression or conversion ``glance image-tasks`` shows nothing. The
message is saved through the flow's ``task_repo`` exactly as Glance's
``_ImportToStore`` does. Each save also bumps the task's ``updated_at``,
which keeps Glance's 60-minute import-lock expiry from treating a long
conversion as dead. A failure to save is logged, never fatal.
"""

from typing import Any, Optional

from glance.common.scripts import utils as script_utils
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class TaskMessages:
    def __init__(self, task_repo: Any, task_id: Optional[str]) -> None:
        self.task_repo = task_repo
        self.task_id = task_id

    def set(self, text: str) -> bool:
        if self.task_repo is None or not self.task_id:
            return False
        try:
            task = script_utils.get_task(self.task_repo, self.task_id)
            if task is None or task.status != "processing":
                return False
            task.message = text[:1024]
            self.task_repo.save(task)
            return True
        except Exception as exc:  # a message is never worth an import
            LOG.warning("Could not update message of task %s: %s",
                        self.task_id, exc)
            return False
