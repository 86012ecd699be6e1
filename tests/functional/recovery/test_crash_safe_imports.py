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

"""glance-api killed or stopped at each step of an import.

A real glance-api (gunicorn, 2 workers) on PostgreSQL with every plugin,
real qemu-img. Each case starts a glance-direct import, waits until the
import journal shows the wanted step (for the store upload: until the
store's file grows), kills the whole process group (a crash) or sends
SIGTERM to the master (a graceful stop), reads the journal once more to
prove where the import really was, and restarts glance-api with the same
configuration and database (``local-glance restart``). Without any client
action the start-up recovery must then leave the image ``uploading`` with
the user's staged upload kept (glance-direct) or ``queued`` (web-download),
with no partial object in the store, nothing of ours in staging, the stores
in ``os_glance_failed_import`` and a task message that names the step; and
``glance image-import`` alone (re-importing for web-download) must then
make it ``active`` with data equal to the source (``qemu-img compare``).

Also: killed or stopped while a raw output streams into the store (the
streaming path, without glance_ext_inject); one worker killed while its
sibling converts (the sibling's import
goes on untouched), and a soak of 12 concurrent good and malicious imports
killed at three different moments.
"""

import bz2
import concurrent.futures
import os
import random
import shutil
import signal
import time

import pytest

from glance_ext.local_glance import client
from glance_ext.plugins import recovery
from glance_ext.plugins.journal import Step
from glance_ext.testing import corpus
from glance_ext.testing import crash
from glance_ext.testing import images
from glance_ext.testing.guest import disks
from tests.functional.convert import helpers

MiB = 1024 * 1024
PLUGINS = helpers.OUR_PLUGINS + ["glance_ext_inject"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Sources big enough for each step to last: a 256 MiB disk with 32 MiB
    of data as raw (upload without conversion), qcow2 (conversion, then a
    256 MiB raw upload) and bzip2'd raw (decompression); an Ubuntu guest
    (injection)."""
    d = tmp_path_factory.mktemp("crash-images")
    raw = str(d / "disk.raw")
    with open(raw, "wb") as fh:
        fh.truncate(256 * MiB)
        block = bytes(range(256)) * 4096
        for _ in range(32):
            fh.write(block)
    qcow2 = str(d / "disk.qcow2")
    images.qemu_img("convert", "-f", "raw", "-O", "qcow2", raw, qcow2)
    # bzip2: of the codecs, the slowest to decompress (about 1.4 s for
    # this disk here, gzip 0.5 s), so the step is long enough to stop in.
    bz2_path = str(d / "disk.raw.bz2")
    with open(raw, "rb") as src, bz2.open(bz2_path, "wb",
                                          compresslevel=1) as dst:
        shutil.copyfileobj(src, dst, 4 * MiB)
    ubuntu = disks.image(disks.SPECS["ubuntu-gpt"], "qcow2")
    small = images.pattern_image(str(d / "small.qcow2"), 8, "qcow2")
    return {"raw": (raw, "raw", raw, "raw"),
            "qcow2": (qcow2, "qcow2", raw, "raw"),
            "bz2": (bz2_path, "raw", raw, "raw"),
            "ubuntu": (ubuntu, "qcow2", ubuntu, "qcow2"),
            "small": (small, "qcow2", small, "qcow2")}


def _options(locks: str, rate: str = "8"):
    opts = helpers.import_options(locks, rate_limit_mb=rate)
    opts["glance_ext_decompress.max_ratio"] = "100000"
    return opts


@pytest.fixture(scope="module")
def glance(module_glance_factory, tmp_path_factory):
    return Running(module_glance_factory(
        plugins=PLUGINS, db="postgresql", workers=2,
        import_options=_options(str(tmp_path_factory.mktemp("locks")))))


class Running:
    """The module's glance-api; ``restart`` swaps in the new process."""

    def __init__(self, glance: client.LocalGlance) -> None:
        self.g = glance

    def restart(self) -> None:
        self.g = self.g.restart()


def _ours_in_staging(g, image_id):
    return [n for n in g.staged_files()
            if n.startswith(image_id) and n != image_id]


def _settled(g, image_id, timeout=120):
    """After a restart: wait until recovery has dealt with the import (no
    task of it running, its journal entry gone) and return the image."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The image is read last: recovery removes the journal entry only
        # after it has reverted the image, dropped the lock and failed
        # the task, so an image read before those checks may be mid-way.
        running = [t for t in g.api_tasks(image_id)
                   if t["status"] in ("pending", "processing")]
        if not running and crash.entry_of(g.journal_dir, image_id) is None:
            image = g.image(image_id)
            if image["status"] != "importing":
                return image
        time.sleep(0.3)
    raise AssertionError("image %s not recovered: %s\n%s"
                         % (image_id, g.image(image_id), g.log_tail()))


def _import_and_stop(running: Running, path: str, disk_format: str,
                     how: str, step):
    """Import ``path`` and stop glance-api at ``step``; return the image id
    and the journal entry as the dead process left it. The import is
    started in the background after staging, so the journal is watched
    from the first step on (``image-create-via-import`` returns only once
    it has shown the image, when a short step may be over)."""
    g = running.g
    image_id = g.create_and_stage(path, disk_format)
    importer = g.start_import(image_id)
    try:
        return image_id, _stop(g, image_id, how, step)
    finally:
        # Its image-show may meet the stopped server: only the import
        # request matters, and the journal step proves it was taken.
        importer.wait(60)


def _stop(g, image_id: str, how: str, step):
    if step == "store":
        # Conversion (if any) over, the store upload writing.
        crash.wait_for_step(g.journal_dir, image_id, Step.UPLOAD)
        crash.wait_for_growing_file(os.path.join(g.store_dir, image_id),
                                    4 * MiB)
    else:
        crash.wait_for_step(g.journal_dir, image_id, step)
    if how == "kill":
        crash.kill_group(g.pid)
    else:
        os.kill(g.pid, signal.SIGTERM)
    crash.wait_gone(g.pid, 60)
    crash.wait_gone_group(g.pid, 60)
    return crash.entry_of(g.journal_dir, image_id)


def _assert_retry_works(g, image_id, source, source_format, tmp_path):
    g.glance("image-import", image_id, "--import-method", "glance-direct")
    image = g.wait_import(image_id)
    assert image["status"] == "active", (image, g.log_tail())
    helpers.assert_stored_equals(g, image, source, source_format,
                                 str(tmp_path))
    assert not _ours_in_staging(g, image_id)
    assert g.staged_file_gone(image_id)


def _assert_recovered_uploading(g, image, entry, staged_size):
    image_id = image["id"]
    assert image["status"] == "uploading", (image, g.log_tail())
    # The user's upload is kept as it was staged.
    assert os.path.getsize(os.path.join(g.staging_dir, image_id)) == \
        staged_size
    assert not _ours_in_staging(g, image_id), g.staged_files()
    assert not os.path.exists(os.path.join(g.store_dir, image_id))
    assert not image.get("os_glance_importing_to_stores"), image
    assert "fs" in image.get("os_glance_failed_import", ""), image
    assert "os_glance_import_task" not in image, image
    message = helpers.task_message(g, image_id)
    assert "interrupted because glance-api stopped" in message, message
    assert recovery.where(entry) in message, message
    assert "glance image-import %s" % image_id in message, message


# (case, data key, the step to stop at: a journal step or "store")
STEPS = [
    ("decompression", "bz2", Step.DECOMPRESS),
    ("validation", "qcow2", Step.VALIDATE),
    ("conversion", "qcow2", Step.CONVERT),
    ("upload-after-conversion", "qcow2", "store"),
    ("upload-without-conversion", "raw", "store"),
    ("injection", "ubuntu", Step.INJECT),
]


@pytest.mark.parametrize("case,key,step", STEPS, ids=[s[0] for s in STEPS])
def test_killed_at_each_step(glance, data, tmp_path, case, key, step):
    path, disk_format, source, source_format = data[key]
    image_id, entry = _import_and_stop(glance, path, disk_format, "kill",
                                       step)
    # Where the dead process really was (it writes nothing more).
    expected = Step.UPLOAD if step == "store" else step
    assert entry.step is expected and expected not in entry.done, entry
    glance.restart()
    image = _settled(glance.g, image_id)
    _assert_recovered_uploading(glance.g, image, entry,
                                os.path.getsize(path))
    _assert_retry_works(glance.g, image_id, source, source_format, tmp_path)


@pytest.fixture(scope="module")
def stream_glance(module_glance_factory, tmp_path_factory):
    """Without glance_ext_inject, so raw outputs are streamed into the
    store upload (docs/convert.md)."""
    return Running(module_glance_factory(
        plugins=helpers.OUR_PLUGINS, db="postgresql", workers=2,
        import_options=_options(str(tmp_path_factory.mktemp("locks")))))


@pytest.mark.parametrize("how", ["kill", "term"])
def test_stopped_while_streaming(stream_glance, data, tmp_path, how):
    """Killed or stopped while the converted data streams into the
    store: the FIFO and the half-written store object are gone after the
    restart, the upload is kept, and the retry streams again."""
    path, disk_format, source, source_format = data["qcow2"]
    image_id, entry = _import_and_stop(stream_glance, path, disk_format,
                                       how, "store")
    assert entry.step is Step.UPLOAD, entry
    assert any(f.endswith(".glance_ext_convert.raw.stream")
               for f in entry.files), entry
    stream_glance.restart()
    image = _settled(stream_glance.g, image_id)
    _assert_recovered_uploading(stream_glance.g, image, entry,
                                os.path.getsize(path))
    assert not [p for p in crash_pids(image_id)], crash_pids(image_id)
    _assert_retry_works(stream_glance.g, image_id, source, source_format,
                        tmp_path)
    assert stream_glance.g.image(image_id)["glance_ext_convert_path"] == \
        "stream"


def crash_pids(image_id):
    """nbdcopy or qemu-nbd still running for the image."""
    from glance_ext.testing import qemu_procs
    return [pid for pid in qemu_procs.pids_naming(image_id)]


@pytest.mark.parametrize("case,key,step", STEPS, ids=[s[0] for s in STEPS])
def test_stopped_gracefully_at_each_step(glance, data, tmp_path, case, key,
                                         step):
    # SIGTERM: gunicorn stops its workers; the exiting interpreter lets
    # the running task end but shuts taskflow's pools down, so the flow
    # fails at the next task without reverting. Where it ended is in the
    # journal; the invariants are the same.
    path, disk_format, source, source_format = data[key]
    image_id, entry = _import_and_stop(glance, path, disk_format, "term",
                                       step)
    glance.restart()
    image = _settled(glance.g, image_id)
    if entry is None:
        # The import ended before the interpreter did.
        assert image["status"] == "active", (image, glance.g.log_tail())
        assert not _ours_in_staging(glance.g, image_id)
        return
    if image["status"] == "active":
        # The store upload finished; only Glance's clean-up was cut.
        assert entry.step is Step.UPLOAD
        assert not image.get("os_glance_importing_to_stores"), image
        assert glance.g.staged_file_gone(image_id)
        return
    _assert_recovered_uploading(glance.g, image, entry,
                                os.path.getsize(path))
    _assert_retry_works(glance.g, image_id, source, source_format, tmp_path)


def test_web_download_killed_while_converting(glance, data, http_server,
                                              module_glance_factory,
                                              tmp_path_factory, tmp_path):
    # web-download needs its port allowed: a Glance of its own.
    g = module_glance_factory(
        plugins=PLUGINS, db="postgresql", workers=2,
        web_download_port=http_server.port,
        import_options=_options(str(tmp_path_factory.mktemp("wd-locks"))))
    running = Running(g)
    path, disk_format, source, source_format = data["qcow2"]
    shutil.copy(path, os.path.join(http_server.directory, "crash.qcow2"))
    url = http_server.url_for("crash.qcow2")
    image_id = g.web_download(url, disk_format)
    entry = _stop(g, image_id, "kill", Step.CONVERT)
    assert entry.method == "web-download"
    running.restart()
    g = running.g
    image = _settled(g, image_id)
    assert image["status"] == "queued", image
    assert not [n for n in g.staged_files() if n.startswith(image_id)]
    assert not os.path.exists(os.path.join(g.store_dir, image_id))
    message = helpers.task_message(g, image_id)
    assert recovery.where(entry) in message, message
    assert "the data is fetched again" in message
    g.glance("image-import", image_id, "--import-method", "web-download",
             "--uri", url)
    image = g.wait_import(image_id)
    assert image["status"] == "active", (image, g.log_tail())
    helpers.assert_stored_equals(g, image, source, source_format,
                                 str(tmp_path))


def test_one_worker_killed_while_its_sibling_converts(module_glance_factory,
                                                      tmp_path_factory, data,
                                                      tmp_path):
    # Slow conversions (4 MiB/s) so both are converting at once, each in
    # its own worker: the killed worker's import is reverted when gunicorn
    # starts a new worker; the sibling's import is never touched.
    g = module_glance_factory(
        plugins=PLUGINS, db="postgresql", workers=2,
        import_options=_options(str(tmp_path_factory.mktemp("w-locks")),
                                rate="4"))
    path, disk_format, source, source_format = data["qcow2"]
    started = []
    converting = {}
    for _ in range(6):
        image_id = g.import_file(path, disk_format)
        started.append(image_id)
        crash.wait_for_step(g.journal_dir, image_id, Step.CONVERT)
        # Judge by what converts now: an earlier import of the same worker
        # may have finished while this one was being started.
        converting = _converting_by_worker(g, started)
        if len(converting) == 2:
            break
    assert len(converting) == 2, "no two workers converting at once"
    (victim_pid, victim), (sibling_pid, sibling) = sorted(
        converting.items())
    os.kill(victim_pid, signal.SIGKILL)
    image = _settled(g, victim)
    assert image["status"] == "uploading", (image, g.log_tail())
    assert "os_glance_import_task" not in image
    # The sibling converts on and lands right.
    done = g.wait_import(sibling)
    assert done["status"] == "active", (done, g.log_tail())
    helpers.assert_stored_equals(g, done, source, source_format,
                                 str(tmp_path))
    assert "interrupted" not in helpers.task_message(g, sibling)
    _assert_retry_works(g, victim, source, source_format, tmp_path)
    for image_id in set(started) - {victim, sibling}:
        g.wait_import(image_id)


def _converting_by_worker(g, image_ids):
    """{worker pid: an image it is converting right now}."""
    converting = {}
    for image_id in image_ids:
        entry = crash.entry_of(g.journal_dir, image_id)
        if entry is not None and entry.step is Step.CONVERT and \
                Step.CONVERT not in entry.done:
            converting.setdefault(entry.owner.pid, image_id)
    return converting


SOAK_GOOD = ["qcow2", "raw", "bz2", "small", "small", "ubuntu", "qcow2",
             "small"]
SOAK_BAD = ["qcow2_backing_abs", "qcow2_data_file",
            "vmdk_flat_extent_existing", "qed_claimed_qcow2"]


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_soak_killed_at_a_random_moment(module_glance_factory,
                                        tmp_path_factory, data, tmp_path,
                                        round_):
    g = module_glance_factory(
        plugins=PLUGINS, db="postgresql", workers=2,
        import_options=_options(str(tmp_path_factory.mktemp("s-locks"))))
    cases = {c.name: c for c in corpus.ensure()}
    jobs = [(data[k][0], data[k][1], k) for k in SOAK_GOOD]
    jobs += [(cases[n].file, cases[n].claimed, n) for n in SOAK_BAD]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        ids = dict(zip(pool.map(lambda j: g.import_file(j[0], j[1]), jobs),
                       jobs))
    time.sleep(random.Random(round_).uniform(0.5, 8.0))
    crash.kill_group(g.pid)
    crash.wait_gone_group(g.pid, 60)
    g = g.restart()
    for image_id, (_path, _fmt, name) in ids.items():
        image = _settled(g, image_id)
        assert image["status"] in ("active", "uploading", "queued"), image
        assert not image.get("os_glance_importing_to_stores"), image
        assert not _ours_in_staging(g, image_id), g.staged_files()
        in_store = os.path.exists(os.path.join(g.store_dir, image_id))
        assert in_store == (image["status"] == "active"), image
        if name in SOAK_BAD:
            assert image["status"] != "active", image
    # Every image can be imported again with the normal commands.
    for image_id, (path, fmt, name) in ids.items():
        image = g.image(image_id)
        if image["status"] == "uploading":
            g.glance("image-import", image_id, "--import-method",
                     "glance-direct")
        elif image["status"] == "queued":
            g.stage_and_import(image_id, path)
        else:
            continue
        image = g.wait_import(image_id)
        expected = "queued" if name in SOAK_BAD else "active"
        assert image["status"] == expected, (name, image, g.log_tail())
