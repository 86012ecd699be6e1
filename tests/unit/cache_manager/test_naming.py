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

from glance_ext.cache_manager import naming
from glance_ext.cache_manager.naming import BaseClass as C

SHA = '0123456789abcdef0123456789abcdef01234567'


def test_nova_names():
    cases = {
        SHA: C.ORIGINAL,
        SHA + '_20': C.RESIZED,
        SHA + '_sm': C.RESIZED_LEGACY,
        'swap_512': C.SWAP,
        'ephemeral_20_0706d66': C.EPHEMERAL,
        SHA + '.part': C.PART,
        SHA + '_20.part': C.PART,
        SHA + '.converted': C.CONVERTED,
        SHA + '.info': C.LEGACY_INFO,
    }
    for name, kind in cases.items():
        assert naming.classify(name).kind == kind, name


def test_names_nova_would_age_but_are_not_its_own_are_unknown():
    # nova ages any 40-char name and any <40>_<...>; these are not names
    # nova creates, so they must never be touched.
    for name in ('X' * 40, SHA.upper(), SHA + '_x', SHA + '_', 'swap_',
                 'swap_1_2', 'ephemeral_1_abc', 'ephemeral_x_0706d66',
                 'ephemeral_1_0706d66_2', SHA + '.tmp', 'README', '.nfs0001',
                 'swap_512.part', SHA[:39]):
        assert naming.classify(name).kind == C.UNKNOWN, name


def test_fingerprint_and_locks():
    assert naming.classify(SHA + '_20').fingerprint == SHA
    assert naming.creation_locks(SHA + '_20') == (SHA + '_20', SHA)
    assert naming.creation_locks(SHA + '_sm') == (SHA + '_sm', SHA)
    assert naming.creation_locks(SHA) == (SHA,)
    assert naming.creation_locks('swap_1') == ('swap_1',)
    assert naming.owning_base(SHA + '.part') == SHA
    assert naming.owning_base(SHA) is None
