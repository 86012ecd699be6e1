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

"""The errors of glance_ext: one root, a few kinds callers act on.

Every engine raises a subclass of ``GlanceExtError``; what a caller does
depends only on the kind, never on the engine:

- ``ConfigurationError``: an operator setting is wrong; name the option.
- ``ToolUnavailable``: the host cannot do the work (a tool is missing or
  unusable, a backend is unreachable). An environment fault: never
  reported as a bad image, and the message names what to install or set.
- ``ImageRefused``: the image itself is bad, unsafe or against policy.
- ``LimitExceeded``: a resource limit stopped the work (time, memory,
  space, ratio).
- ``ToolFailed``: a tool failed for a reason that is neither of the above.
- ``Interrupted``: the work was stopped from outside (the import lock was
  lost, a stop was asked for).

As in glance_store's ``exceptions``, a class carries a message template
filled from keyword arguments, and a caller may pass a ready message
instead. The import plugins translate these to Glance's
``UploadException`` in one place, at the boundary (``plugins.base``).
"""

from typing import Any, Optional


class GlanceExtError(Exception):
    """The root of every error glance_ext raises on purpose."""

    message = "glance_ext failed"

    def __init__(self, message: Optional[str] = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        for key, value in kwargs.items():
            setattr(self, key, value)
        if message is None:
            try:
                message = self.message % kwargs
            except (KeyError, TypeError, ValueError):
                message = self.message
        self.msg = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.msg


class ConfigurationError(GlanceExtError):
    """An operator setting is invalid; the message names it and the fix."""

    message = "invalid configuration: %(reason)s"


class ToolUnavailable(GlanceExtError):
    """The host cannot run a tool or reach a backend the work needs.

    ``fix`` says what to install or set; it is part of the message.
    """

    message = "%(tool)s cannot be used on this host: %(reason)s; %(fix)s"


class ImageRefused(GlanceExtError):
    """The image data is bad, unsafe or against the operator's policy."""

    message = "image refused: %(reason)s"


class LimitExceeded(GlanceExtError):
    """A resource limit (time, memory, space, size, ratio) stopped the work."""

    message = "limit exceeded: %(reason)s"


class ToolFailed(GlanceExtError):
    """A tool failed for a reason that is neither the image nor a limit."""

    message = "%(tool)s failed: %(reason)s"


class Interrupted(GlanceExtError):
    """The work was stopped from outside (lock lost, stop requested)."""

    message = "interrupted: %(reason)s"
