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

import pytest

from glance_ext.local_glance import errors
from glance_ext.local_glance import plugin_names


def test_glance_own_plugins_are_known():
    assert "image_conversion" in plugin_names.available()
    assert plugin_names.resolve(["image_conversion"]) == ["image_conversion"]


def test_all_means_ours_in_canonical_order():
    ours = plugin_names.ours()
    assert all(n.startswith("glance_ext_") for n in ours)
    rank = {n: i for i, n in enumerate(plugin_names.CANONICAL_ORDER)}
    assert [rank.get(n, 99) for n in ours] == sorted(
        rank.get(n, 99) for n in ours)
    assert plugin_names.resolve(["all"]) == ours


def test_duplicates_and_blanks_are_dropped():
    assert plugin_names.resolve(
        ["image_conversion", "", "image_conversion"]) == ["image_conversion"]


def test_unknown_plugin_lists_what_is_installed():
    with pytest.raises(errors.LocalGlanceError) as exc:
        plugin_names.resolve(["no_such"])
    assert "unknown import plugin 'no_such'" in str(exc.value)
    assert "image_conversion" in str(exc.value)
