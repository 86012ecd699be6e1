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

"""The decompression engine: compressed image data, found and expanded
within limits.

Codec detection by magic bytes (``codecs``: gzip, bzip2, xz, zstd,
single-member zip), bounded streaming to a sparse file (``stream``:
output size, compression ratio and free-space limits, so a bomb is refused
early) and the settings of ``[glance_ext_decompress]`` (``settings``).
Behind the ``glance_ext_decompress`` plugin; knows nothing of Glance.
"""
