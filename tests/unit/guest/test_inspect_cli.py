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

"""`glance-ext inspect` shows the guest after an accepted verdict."""

import json
import os
import subprocess
import sys

GLANCE_EXT = os.path.join(os.path.dirname(sys.executable), "glance-ext")


def _inspect(*args):
    return subprocess.run([GLANCE_EXT, "inspect"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, stdin=subprocess.DEVNULL)


def test_text_and_json_show_the_guest(guest_image):
    path, _ = guest_image("ubuntu-gpt", "qcow2")
    text = _inspect(path)
    assert text.returncode == 0, text.stderr
    assert "osinfo short-id:   ubuntu22.04" in text.stdout
    assert "image guide checks:" in text.stdout
    data = json.loads(_inspect("--format", "json", path).stdout)
    assert data["verdict"] == "accepted"
    assert data["guest"]["architecture"] == "x86_64"


def test_no_guest_skips_it(guest_image):
    path, _ = guest_image("ubuntu-gpt", "qcow2")
    data = json.loads(_inspect("--format", "json", "--no-guest",
                               path).stdout)
    assert "guest" not in data
