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

Every error glance_ext raises on purpose is defined here and derives from
``GlanceExtError`` through exactly one of these kinds; what a caller does
depends only on the kind, never on the engine:

- ``ConfigurationError``: an operator setting is wrong; the message names
  the option and the fix.
- ``ToolUnavailable``: the host cannot do the work (a tool missing or
  unusable, a backend unreachable, data not installed). An environment
  fault: never reported as a bad image; the message says what to install
  or set.
- ``ImageRefused``: the image itself is bad, unsafe or against policy.
- ``LimitExceeded``: a resource limit stopped the work (time, memory,
  space, reads, waiting).
- ``ToolFailed``: a tool failed for a reason that is neither of the above.
- ``Interrupted``: the work was stopped from outside (the import lock was
  lost, a stop was asked for).

As in glance_store's ``exceptions``, a class carries a message template
filled from keyword arguments (which also become attributes), and a caller
may pass a ready message instead. The import plugins translate these to
Glance's ``UploadException`` in one place, at the boundary
(``glance_ext.plugins.base``); the command-line tools map the kinds to
their exit statuses.

The messages of ``ImageRefused`` and ``LimitExceeded`` may reach API users
(the import task's message): they never carry a tool's stderr, which can
name host paths (``QemuImgError.stderr`` is for operator logs).
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


# -- the kinds ------------------------------------------------------------

class ConfigurationError(GlanceExtError):
    """An operator setting is invalid; the message names it and the fix."""

    message = "invalid configuration: %(reason)s"


class ToolUnavailable(GlanceExtError):
    """The host cannot run a tool, reach a backend or find installed data.

    ``fix`` says what to install or set; it is part of the message.
    """

    message = "%(tool)s cannot be used on this host: %(reason)s; %(fix)s"


class ImageRefused(GlanceExtError):
    """The image data is bad, unsafe or against the operator's policy."""

    message = "image refused: %(reason)s"


class LimitExceeded(GlanceExtError):
    """A resource limit (time, memory, space, reads, waiting) stopped the
    work."""

    message = "limit exceeded: %(reason)s"


class ToolFailed(GlanceExtError):
    """A tool failed for a reason that is neither the image nor a limit."""

    message = "%(tool)s failed: %(reason)s"


class Interrupted(GlanceExtError):
    """The work was stopped from outside (lock lost, stop requested)."""

    message = "interrupted: %(reason)s"


# -- configuration -----------------------------------------------------------

class PolicyError(ConfigurationError):
    """An option of ``[glance_ext_validate]`` is invalid."""


class SettingsError(ConfigurationError):
    """An option of ``[glance_ext_convert]`` is invalid."""


class TargetError(ConfigurationError):
    """The stores of one import cannot agree on a target format."""


class RuleError(ConfigurationError):
    """An inject rule or option is invalid."""


class TemplateError(RuleError):
    """A rule's value template is malformed."""


class MissingValue(TemplateError):
    """A template names a fact the image does not have (the rule is then
    skipped, which is not an error for the import)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class CatalogError(ConfigurationError):
    """A metadefs catalog file cannot be read or is invalid; the message
    names the file and the fix."""


class PasteConfigError(ConfigurationError):
    """The input is not a paste file ``paste-config`` can edit."""


class UnknownFormat(ConfigurationError):
    """A disk_format name qemu has no driver for."""


# -- environment -------------------------------------------------------------

class InterpreterUnusable(ToolUnavailable):
    """The prlimit wrapper has no Python to run under (uWSGI, mod_wsgi)."""


class QemuNbdUnavailable(ToolUnavailable):
    """qemu-nbd cannot be run on this host."""


class NovaUnavailable(ToolUnavailable):
    """nova (a tooling requirement of the metadefs checks) is missing."""


class CatalogUnavailable(ToolUnavailable):
    """The metadefs catalog could not be read at run time (the metadefs API
    did not answer, or the catalog directory cannot be read)."""


class ShippedDataMissing(ToolUnavailable):
    """glance_ext was installed without its data files."""


class CoordinationUnavailable(ToolUnavailable):
    """A tooz coordination backend (etcd, redis, ...) cannot be used right
    now: unreachable, refused, timed out. ``backend`` is its URL without
    credentials; ``fix`` says what to do. An environment fault, never a
    fault of an image."""

    message = ("the coordination backend %(backend)s cannot be used: "
               "%(reason)s; %(fix)s")


# -- the image ---------------------------------------------------------------

class SourceRejected(ImageRefused):
    """The conversion's own inspection refused the source."""


class DecompressionRefused(ImageRefused):
    """The compressed data is unsafe or unreadable (bomb, bad archive)."""


class GuestInspectionError(ImageRefused):
    """The image cannot be inspected at all (unsupported format, unsafe
    container, unreadable file)."""


class GuestDataError(ImageRefused):
    """A structure inside the guest cannot be read as expected."""


class DiskError(GuestDataError):
    """The virtual disk cannot be opened or read as asked."""


class ReadBudgetExceeded(DiskError):
    """The inspection read as much of the image as it may."""


class PartitionTableError(GuestDataError):
    """A partition table is invalid."""


class LvmError(GuestDataError):
    """LVM2 metadata cannot be read."""


class FsError(GuestDataError):
    """A filesystem cannot be read."""


class GuestPathError(GuestDataError):
    """A path inside the guest cannot be read."""


class NotInGuest(GuestPathError):
    """A path is not a regular file inside the guest."""


class InventoryError(GuestDataError):
    """A package database cannot be read (corrupt, or over the budget)."""


# -- limits ------------------------------------------------------------------

class InsufficientSpace(LimitExceeded):
    """Not enough free space in the staging area for the output."""


class SlotTimeout(LimitExceeded):
    """No conversion slot became free within the wait limit."""


# -- tools -------------------------------------------------------------------

class VerificationFailed(ToolFailed):
    """A conversion's output is not what it should be."""


class NbdError(ToolFailed):
    """The NBD conversation with qemu-nbd failed."""


class NbdConnectError(NbdError):
    """qemu-nbd's socket refused the connection (not listening yet)."""


class SbomError(ToolFailed):
    """No SBOM can be made from this inspection."""


class GeneratorError(ToolFailed):
    """A catalog generator cannot produce its namespace."""


class QuarantineError(ToolFailed):
    """A cache-manager quarantine operation failed."""


class LocalGlanceError(ToolFailed):
    """The local Glance (development tool) cannot be started or used."""


class CoordinationServerUnavailable(ToolFailed):
    """A coordination server the tests or benchmarks start (etcd, redis;
    ``glance_ext.testing.servers``) is missing or did not start."""


# -- qemu-img ----------------------------------------------------------------

class QemuImgError(GlanceExtError):
    """qemu-img (or a conversion process) did not succeed.

    ``kind`` is one of ``failed``, ``killed``, ``limit``, ``timeout``,
    ``missing``, ``cancelled``; each has its own class (built by
    ``qemu_error``) that also derives from the matching kind above.
    ``stderr`` is for operator logs only: it can name host paths, so it
    must never be copied into a message an API user sees. ``fix`` (for
    ``missing``) is what to install or set.
    """

    kind = "failed"

    def __init__(self, message: str, returncode: Optional[int] = None,
                 stderr: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr
        self.fix = fix


class QemuImgFailed(QemuImgError, ToolFailed):
    kind = "failed"


class QemuImgKilled(QemuImgError, ToolFailed):
    kind = "killed"


class QemuImgLimit(QemuImgError, LimitExceeded):
    kind = "limit"


class QemuImgTimeout(QemuImgError, LimitExceeded):
    kind = "timeout"


class QemuImgUnavailable(QemuImgError, ToolUnavailable):
    kind = "missing"


class QemuImgCancelled(QemuImgError, Interrupted):
    kind = "cancelled"


_QEMU_KINDS = {cls.kind: cls for cls in (
    QemuImgFailed, QemuImgKilled, QemuImgLimit, QemuImgTimeout,
    QemuImgUnavailable, QemuImgCancelled)}
QEMU_KINDS = tuple(_QEMU_KINDS)


def qemu_error(kind: str, message: str, returncode: Optional[int] = None,
               stderr: str = "", fix: str = "") -> QemuImgError:
    """The ``QemuImgError`` of ``kind`` (see ``QEMU_KINDS``)."""
    return _QEMU_KINDS[kind](message, returncode=returncode, stderr=stderr,
                             fix=fix)
