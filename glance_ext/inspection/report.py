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

"""The structured result of one inspection.

The same object backs the CLI output, the image properties and the value the
validate task hands to later plugins (as a plain dict, so it survives
taskflow storage; ``Report.from_dict`` turns it back into the object on the
other side), so all three always agree.
"""

import dataclasses
import enum
from typing import Any, Dict, List, Optional


class Verdict(str, enum.Enum):
    """The validate engine's answer about an image."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return self.value


ACCEPTED = Verdict.ACCEPTED
REJECTED = Verdict.REJECTED

# Every image property we write starts with this prefix.
PROPERTY_PREFIX = "glance_ext_validate_"


@dataclasses.dataclass
class Finding:
    """One reason to reject (or a warning): a stable code and a message."""

    code: str
    message: str

    def to_dict(self) -> Dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: Dict[str, str]) -> "Finding":
        return cls(code=data["code"], message=data["message"])


@dataclasses.dataclass
class Report:
    claimed_format: Optional[str] = None
    container_format: Optional[str] = None
    detected_format: Optional[str] = None
    disk_format: Optional[str] = None   # what the image should be stored as
    corrected: bool = False
    virtual_size: Optional[int] = None
    file_size: int = 0
    nested_format: Optional[str] = None
    # The driver qemu's own format probe (no ``-f``) would pick.
    qemu_probe: Optional[str] = None
    rejections: List[Finding] = dataclasses.field(default_factory=list)
    warnings: List[Finding] = dataclasses.field(default_factory=list)
    bytes_read: int = 0
    qemu_ran: bool = False
    engine_version: str = ""
    elapsed_seconds: float = 0.0

    @property
    def verdict(self) -> Verdict:
        return Verdict.REJECTED if self.rejections else Verdict.ACCEPTED

    @property
    def accepted(self) -> bool:
        return not self.rejections

    @property
    def codes(self) -> List[str]:
        return [f.code for f in self.rejections]

    def reject(self, code: str, message: str) -> None:
        # Several layers (oslo, our header checks, qemu) may see the same
        # problem; report it once.
        finding = Finding(code, message)
        if finding not in self.rejections:
            self.rejections.append(finding)

    def warn(self, code: str, message: str) -> None:
        self.warnings.append(Finding(code, message))

    def reason(self) -> str:
        """One line for the task message: every rejection, in order."""
        return "; ".join(f.message for f in self.rejections)

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["verdict"] = self.verdict.value
        data["rejections"] = [f.to_dict() for f in self.rejections]
        data["warnings"] = [f.to_dict() for f in self.warnings]
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Report":
        """The report ``to_dict`` made (the verdict follows from the
        rejections, so it is not read)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["rejections"] = [Finding.from_dict(f)
                                for f in data.get("rejections") or ()]
        values["warnings"] = [Finding.from_dict(f)
                              for f in data.get("warnings") or ()]
        return cls(**values)

    def to_properties(self) -> Dict[str, str]:
        """Image properties (strings, as Glance wants) under our prefix."""
        props = {
            "detected_format": self.detected_format or "unknown",
            "verdict": self.verdict.value,
            "engine_version": self.engine_version,
        }
        if self.virtual_size is not None:
            props["virtual_size"] = str(self.virtual_size)
        if self.corrected:
            props["claimed_format"] = self.claimed_format or ""
        if self.nested_format:
            props["nested_format"] = self.nested_format
        if self.rejections:
            # Glance limits property values to 255 characters.
            props["reason"] = self.reason()[:255]
        return {PROPERTY_PREFIX + k: v for k, v in props.items()}
