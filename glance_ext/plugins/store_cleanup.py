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

"""Remove what a store upload cut short by a crash left in a store.

Glance's store upload writes straight to the object's final name: the file
store to ``<datadir>/<image id>``, rbd to an rbd image named by the image
id. A crash in the middle leaves that object behind, and every later
import of the image fails (``glance_store.exceptions.Duplicate``) until an
administrator deletes it. Recovery calls ``remove_partial`` for each store
the interrupted import was uploading to and has no location in: for the
drivers whose object name follows from the image id, the object is deleted
through the store driver's own ``delete`` (glance_store's public
``delete(uri, backend)``), so the driver's rules (snapshots, trash, paths)
apply. For the others there is no way to find a half-written object, and
the result says so, naming the store.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional

from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What ``remove_partial`` did for one store."""

    store: str
    removed: List[str]
    # Set when leftover data cannot be found: a sentence for the task
    # message and the log.
    unknown: Optional[str] = None


def _file_uris(store: Any, image_id: str) -> List[str]:
    datadirs = [store.datadir] if not store.multiple_datadirs else [
        d for dirs in store.priority_data_map.values() for d in dirs]
    return ["file://" + os.path.join(d, image_id) for d in datadirs
            if os.path.exists(os.path.join(d, image_id))]


def _rbd_uris(store: Any, image_id: str) -> List[str]:
    # The one-component form: the driver fills in its configured pool.
    return ["rbd://%s" % image_id]


# Driver type (glance-api.conf enabled_backends value) -> the locations a
# cut-short upload of an image can have left.
CANDIDATES: Dict[str, Callable[[Any, str], List[str]]] = {
    "file": _file_uris,
    "rbd": _rbd_uris,
}


def store_type(store_id: str) -> Optional[str]:
    """The driver type of ``store_id`` (``file``, ``rbd`` ...)."""
    backends = getattr(cfg.CONF, "enabled_backends", None) or {}
    return backends.get(store_id)


def remove_partial(store_id: str, image_id: str) -> Outcome:
    """Delete the object an interrupted upload of ``image_id`` to
    ``store_id`` may have left. Call only for a store the image has no
    location in (its upload did not finish there). Never raises."""
    # multi_backend explicitly: glance_store's top level re-exports the
    # single-store ``delete`` over the multi-store one.
    from glance_store import exceptions as store_exceptions
    from glance_store import multi_backend

    kind = store_type(store_id)
    finder = CANDIDATES.get(kind or "")
    if finder is None:
        return Outcome(store_id, [], unknown=(
            "store %s (%s driver) keeps no name derived from the image id, "
            "so a half-written object of image %s cannot be found; check "
            "the store" % (store_id, kind or "unknown", image_id)))
    try:
        store = multi_backend.get_store_from_store_identifier(store_id)
        uris = finder(store, image_id)
    except Exception as exc:
        return Outcome(store_id, [], unknown=(
            "store %s could not be opened to look for a half-written "
            "object of image %s (%s)" % (store_id, image_id, exc)))
    removed = []
    for uri in uris:
        try:
            multi_backend.delete(uri, store_id)
        except store_exceptions.NotFound:
            continue
        except Exception as exc:
            LOG.warning("Could not delete %s from store %s: %s", uri,
                        store_id, exc)
            return Outcome(store_id, removed, unknown=(
                "the half-written object %s in store %s could not be "
                "deleted (%s)" % (uri, store_id, exc)))
        LOG.warning("Deleted %s from store %s: an upload of image %s cut "
                    "short by a glance-api stop left it", uri, store_id,
                    image_id)
        removed.append(uri)
    return Outcome(store_id, removed)
