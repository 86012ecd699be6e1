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

"""Which Glance image each original belongs to.

The cache names an original by sha1(image id), which cannot be reversed, so
the images Glance lists are hashed and matched. An original that matches no
listed image belongs to an image deleted in Glance (or invisible to the
token: use an admin token); such bases are evicted first, since no new
instance can be booted from them.
"""

import hashlib
from typing import Dict, Optional

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def fingerprint(image_id: str) -> str:
    """nova's cache name for an image id (imagecache.get_cache_fname)."""
    return hashlib.sha1(image_id.encode('utf-8')).hexdigest()


def images_by_fingerprint(endpoint: str, token: Optional[str],
                          client=None) -> Dict[str, dict]:
    """sha1(id) -> {id, name, status} for every image Glance lists."""
    if client is None:
        from glanceclient import client as glance_client
        client = glance_client.Client('2', endpoint=endpoint, token=token)
    out = {}
    # Hidden images (os_hidden=True) are left out of a plain listing but
    # can still back instances: list them too.
    for filters in ({}, {'os_hidden': True}):
        for image in client.images.list(filters=filters, page_size=200):
            out[fingerprint(image['id'])] = {'id': image['id'],
                                             'name': image.get('name'),
                                             'status': image.get('status')}
    return out
