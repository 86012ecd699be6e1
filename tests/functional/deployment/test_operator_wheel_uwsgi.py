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

"""The operator path, end to end: the built wheel in a uWSGI Glance.

Nothing of the checkout is used at run time and ``local-glance`` is not
involved: the test builds the wheel and the sdist, makes a separate venv
with glance, uwsgi and python-openstackclient, installs the wheel (not
editable), writes the configuration from the *installed* samples with the
commands of the README's "For operators" section, serves glance-api under
uWSGI with the shipped uwsgi.ini sample, loads the catalog from its
installed location with ``glance-manage db load_metadefs``, and imports
through the real ``glance`` and ``openstack`` clients.

It proves: the wheel and sdist carry the catalog and the samples; a qcow2
is converted, a gzip'd qcow2 decompressed and converted, a malicious image
ends ``queued`` with its reason, glance-direct and web-download both work
from both clients; an invalid property is refused with the message visible
in both clients; a restart logs no ERROR for imports that finished; under
uWSGI without ``[wsgi] python_interpreter`` an import fails with a message
naming that setting, and nothing on the image says "rejected".

Mocked, because keystone cannot run here: the ``keystone`` paste flavor has
keystonemiddleware's ``authtoken`` replaced by glance_ext's development
token filter (``glance_ext.local_glance.auth``), which turns
``user:project:roles`` tokens into the identity headers authtoken would
set; Glance's own ``context`` filter and RBAC policies then apply as usual.
"""

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile

import pytest

from glance_ext.local_glance import client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PLUGINS = ["glance_ext_decompress", "glance_ext_validate",
           "glance_ext_convert", "glance_ext_inject"]
MEMBER = "op:demo:member,reader"
ADMIN = "admin:admin:admin,member,reader"
MiB = 1024 * 1024


def _run(cmd, env=None, check=True, timeout=900, stdin=client.CLOSED):
    return client.run([str(c) for c in cmd], env=env, check=check,
                      stdin=stdin, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OperatorGlance:
    """A glance-api installed and configured the way the README says."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dist = os.path.join(root, "dist")
        self.venv = os.path.join(root, "glance-venv")
        self.bin = os.path.join(self.venv, "bin")
        self.etc = os.path.join(root, "etc-glance")
        self.data = os.path.join(root, "var")
        self.log = os.path.join(root, "glance-api.log")
        self.uwsgi_log = os.path.join(root, "uwsgi.log")
        self.port = _free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None

    # -- README step 1: build the wheel, install it into Glance's venv ----
    def build_and_install(self) -> None:
        _run([sys.executable, "-m", "build", "--sdist", "--wheel",
              "--outdir", self.dist, ROOT])
        _run([sys.executable, "-m", "venv", self.venv])
        _run([self.pip, "install", "-q", "glance", "uwsgi",
              "python-openstackclient", self.wheel])

    @property
    def pip(self) -> str:
        return os.path.join(self.bin, "pip")

    @property
    def wheel(self) -> str:
        return os.path.join(self.dist, [n for n in os.listdir(self.dist)
                                        if n.endswith(".whl")][0])

    @property
    def sdist(self) -> str:
        return os.path.join(self.dist, [n for n in os.listdir(self.dist)
                                        if n.endswith(".tar.gz")][0])

    def tool(self, name: str) -> str:
        return os.path.join(self.bin, name)

    # -- README step 2: configuration from the installed samples ----------
    def configure(self, python_interpreter: bool = True) -> None:
        os.makedirs(self.etc, exist_ok=True)
        for sub in ("staging", "tasks", "images", "locks"):
            os.makedirs(os.path.join(self.data, sub), exist_ok=True)
        ge = self.tool("glance-ext")
        sample = _run([ge, "samples", "glance-image-import.conf"]).stdout
        with open(os.path.join(self.etc, "glance-image-import.conf"),
                  "w") as fh:
            fh.write(sample)
            fh.write("\n[image_import_opts]\nimage_import_plugins = [%s]\n"
                     "\n[glance_ext_convert]\nlock_dir = %s\n"
                     % (", ".join(PLUGINS),
                        os.path.join(self.data, "locks")))
        paste = os.path.join(self.etc, "glance-api-paste.ini")
        _run([ge, "paste-config", os.path.join(
            self.venv, "etc", "glance", "glance-api-paste.ini"),
            "-o", paste])
        self._stand_in_for_keystone(paste)
        self.write_api_conf(python_interpreter)
        uwsgi = _run([ge, "samples", "glance-api-uwsgi.ini"]).stdout
        uwsgi = (uwsgi.replace("/opt/glance", self.venv)
                 .replace("/etc/glance", self.etc)
                 .replace("127.0.0.1:9292", "127.0.0.1:%d" % self.port)
                 .replace("processes = 4", "processes = 2"))
        with open(os.path.join(self.etc, "uwsgi.ini"), "w") as fh:
            fh.write(uwsgi)

    def write_api_conf(self, python_interpreter: bool) -> None:
        """Glance's own glance-api.conf, plus what glance_ext needs."""
        lines = [
            "[DEFAULT]",
            "enabled_backends = fs:file",
            "enabled_import_methods = [glance-direct,web-download,"
            "copy-image]",
            "log_file = %s" % self.log,
            "worker_self_reference_url = %s" % self.url,
            "[database]",
            "connection = sqlite:///%s?timeout=60"
            % os.path.join(self.data, "glance.sqlite"),
            "[glance_store]", "default_backend = fs",
            "[fs]", "filesystem_store_datadir = %s"
            % os.path.join(self.data, "images"),
            "[os_glance_staging_store]", "filesystem_store_datadir = %s"
            % os.path.join(self.data, "staging"),
            "[os_glance_tasks_store]", "filesystem_store_datadir = %s"
            % os.path.join(self.data, "tasks"),
            "[paste_deploy]", "flavor = keystone",
            "config_file = %s" % os.path.join(self.etc,
                                              "glance-api-paste.ini"),
            "[import_filtering_opts]", "allowed_schemes = [http]",
            "allowed_hosts = [127.0.0.1]",
            "allowed_ports = [%d]" % self.web_port,
            "[oslo_concurrency]", "lock_path = %s"
            % os.path.join(self.data, "locks"),
        ]
        if python_interpreter:
            lines += ["[wsgi]", "python_interpreter = %s"
                      % self.tool("python3")]
        with open(os.path.join(self.etc, "glance-api.conf"), "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def _stand_in_for_keystone(self, paste: str) -> None:
        # See the module docstring: keystone cannot run here.
        with open(paste) as fh:
            text = fh.read()
        flavor = [line for line in text.splitlines()
                  if line.startswith("keystone = ")]
        assert flavor and " authtoken context " in flavor[0], flavor
        text = text.replace(flavor[0], flavor[0].replace(
            " authtoken context ", " dev-token context "))
        text += ("\n[filter:dev-token]\npaste.filter_factory = "
                 "glance_ext.local_glance.auth:filter_factory\n")
        with open(paste, "w") as fh:
            fh.write(text)

    # -- README steps 3-4: database, catalog, start ------------------------
    def prepare_database(self) -> str:
        conf = os.path.join(self.etc, "glance-api.conf")
        _run([self.tool("glance-manage"), "--config-file", conf, "db_sync"])
        catalog = _run([self.tool("glance-ext"), "metadefs",
                        "path"]).stdout.strip()
        _run([self.tool("glance-manage"), "--config-file", conf, "db",
              "load_metadefs", "--path", catalog])
        return catalog

    def start(self) -> None:
        log = open(self.uwsgi_log, "ab")
        self.proc = subprocess.Popen(
            [self.tool("uwsgi"), "--ini", os.path.join(self.etc,
                                                       "uwsgi.ini")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, cwd=self.root)
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("uwsgi exited %s:\n%s" % (
                    self.proc.returncode, self.tail(self.uwsgi_log)))
            try:
                self.api("/v2/images")
                return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("glance-api under uWSGI did not answer:\n%s"
                             % self.tail(self.uwsgi_log))

    def stop(self) -> None:
        if self.proc is None:
            return
        # die-on-term: SIGTERM stops master and workers, as systemd does.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self, python_interpreter: bool = True) -> int:
        """Stop, rewrite glance-api.conf, start; returns the log offset of
        the new start."""
        self.stop()
        self.write_api_conf(python_interpreter)
        offset = os.path.getsize(self.log) if os.path.exists(self.log) \
            else 0
        self.start()
        return offset

    # -- clients -------------------------------------------------------
    def glance(self, *args, check=True, stdin=client.CLOSED):
        env = dict(os.environ, OS_IMAGE_URL=self.url, OS_AUTH_TOKEN=MEMBER)
        return _run([self.tool("glance")] + list(args), env=env,
                    check=check, stdin=stdin)

    def openstack(self, *args, check=True):
        # openstackclient without keystone (see glance-33 notes): a token
        # and the endpoint, /v2 included.
        env = dict(os.environ, OS_AUTH_TYPE="admin_token", OS_TOKEN=MEMBER,
                   OS_ENDPOINT=self.url + "/v2")
        return _run([self.tool("openstack")] + list(args), env=env,
                    check=check)

    def api(self, path: str, token: str = MEMBER):
        req = urllib.request.Request(self.url + path)
        req.add_header("X-Auth-Token", token)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read().decode())

    def image(self, image_id: str) -> dict:
        return self.api("/v2/images/%s" % image_id)

    def wait_import(self, image_id: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.api("/v2/images/%s/tasks" % image_id)["tasks"]
            if tasks and not [t for t in tasks if t["status"] in
                              ("pending", "processing")]:
                return self.image(image_id)
            time.sleep(0.5)
        raise AssertionError("import of %s did not end:\n%s"
                             % (image_id, self.tail(self.log)))

    def task_message(self, image_id: str) -> str:
        tasks = sorted(self.api("/v2/images/%s/tasks" % image_id)["tasks"],
                       key=lambda t: t["created_at"])
        return tasks[-1]["message"]

    def import_with_glance(self, path: str, disk_format: str, **props):
        args = ["image-create-via-import", "--disk-format", disk_format,
                "--container-format", "bare", "--name",
                os.path.basename(path), "--import-method", "glance-direct"]
        for key, value in props.items():
            args += ["--property", "%s=%s" % (key, value)]
        with open(path, "rb") as data:
            out = self.glance(*args, stdin=data).stdout
        return self.wait_import(client.parse_table(out)["id"])

    @staticmethod
    def tail(path: str, lines: int = 80) -> str:
        if not os.path.exists(path):
            return "(no %s)" % path
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    server = client.HTTPServer(str(tmp_path_factory.mktemp("www")))
    yield server
    server.close()


@pytest.fixture(scope="module")
def operator(tmp_path_factory, web):
    glance = OperatorGlance(str(tmp_path_factory.mktemp("operator")))
    glance.web_port = web.port
    glance.build_and_install()
    glance.configure()
    glance.catalog = glance.prepare_database()
    glance.start()
    yield glance
    glance.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A qcow2 with data, its gzip, and a qcow2 naming /etc/passwd."""
    root = tmp_path_factory.mktemp("images")
    raw = root / "disk.raw"
    with open(raw, "wb") as fh:
        fh.truncate(16 * MiB)
        fh.seek(2 * MiB)
        fh.write(bytes(range(256)) * 4096)
    qcow2 = root / "disk.qcow2"
    _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2])
    gz = root / "disk.qcow2.gz"
    with open(qcow2, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    evil = root / "evil.qcow2"
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b",
          "/etc/passwd", "-F", "raw", evil, "16M"])
    return {"raw": str(raw), "qcow2": str(qcow2), "gz": str(gz),
            "evil": str(evil)}


def _same_data(glance, image, source_raw, tmp_path):
    out = tmp_path / ("%s.download" % image["id"])
    glance.glance("image-download", "--file", str(out), image["id"])
    cmp = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F",
                          image["disk_format"], source_raw, str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert cmp.returncode == 0, cmp.stdout


def test_wheel_and_sdist_carry_the_catalog_and_samples(operator):
    with zipfile.ZipFile(operator.wheel) as whl:
        names = whl.namelist()
    catalog = sorted(os.path.basename(n) for n in names
                     if n.startswith("glance_ext/data/metadefs/"))
    assert catalog == sorted(n for n in os.listdir(
        os.path.join(ROOT, "metadefs")) if n.endswith(".json"))
    samples = sorted(os.path.basename(n) for n in names
                     if n.startswith("glance_ext/data/etc/"))
    assert samples == sorted(n for n in os.listdir(os.path.join(ROOT, "etc"))
                             if n.endswith(".sample"))
    with tarfile.open(operator.sdist) as sdist:
        members = [m.split("/", 1)[1] for m in sdist.getnames()
                   if "/" in m]
    for name in catalog:
        assert "metadefs/" + name in members
    for name in samples:
        assert "etc/" + name in members
    assert "setup.py" in members and "MANIFEST.in" not in samples


def test_catalog_is_the_installed_one_and_loads(operator):
    # From outside the checkout: `python -c` puts the working directory
    # first on sys.path.
    site = subprocess.run(
        [operator.tool("python3"), "-c", "import glance_ext, os; print("
         "os.path.dirname(glance_ext.__file__))"], cwd=operator.root,
        check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    assert not site.startswith(ROOT), site          # not the checkout
    assert operator.catalog == os.path.join(site, "data", "metadefs")
    listed = operator.api("/v2/metadefs/namespaces?limit=200",
                          token=ADMIN)["namespaces"]
    ours = {n["namespace"] for n in listed}
    with open(os.path.join(operator.catalog, "nova-cpu.json")) as fh:
        assert json.load(fh)["namespace"] in ours
    _run([operator.tool("glance-ext"), "metadefs", "check", "--quiet"])


def test_glance_cli_qcow2_is_converted(operator, images, tmp_path):
    image = operator.import_with_glance(images["qcow2"], "qcow2")
    assert image["status"] == "active", (image, operator.tail(operator.log))
    assert image["disk_format"] == "raw"
    assert image["glance_ext_convert_source_format"] == "qcow2"
    assert image["glance_ext_validate_verdict"] == "accepted"
    _same_data(operator, image, images["raw"], tmp_path)


def test_gzipped_qcow2_is_decompressed_then_converted(operator, images,
                                                      tmp_path):
    image = operator.import_with_glance(images["gz"], "qcow2")
    assert image["status"] == "active", (image, operator.tail(operator.log))
    assert image["glance_ext_decompress_codec"] == "gzip"
    assert image["disk_format"] == "raw"
    _same_data(operator, image, images["raw"], tmp_path)


def test_malicious_image_is_queued_with_its_reason(operator, images):
    image = operator.import_with_glance(images["evil"], "qcow2")
    assert image["status"] == "queued"
    assert image["glance_ext_validate_verdict"] == "rejected"
    message = operator.task_message(image["id"])
    assert "backing file" in message, message
    tasks = operator.glance("image-tasks", image["id"]).stdout
    assert "Image rejected by glance_ext_validate" in tasks


def test_openstack_client_glance_direct_and_web_download(operator, images,
                                                         web, tmp_path):
    out = operator.openstack(
        "image", "create", "--import", "--file", images["qcow2"],
        "--disk-format", "qcow2", "--container-format", "bare",
        "osc-direct", "-f", "json").stdout
    image = operator.wait_import(json.loads(out)["id"])
    assert image["status"] == "active", (image, operator.tail(operator.log))
    assert image["disk_format"] == "raw"
    shutil.copy(images["qcow2"], os.path.join(web.directory, "web.qcow2"))
    out = operator.openstack(
        "image", "create", "--disk-format", "qcow2", "--container-format",
        "bare", "osc-web", "-f", "json").stdout
    image_id = json.loads(out)["id"]
    operator.openstack("image", "import", image_id, "--method",
                       "web-download", "--uri", web.url_for("web.qcow2"))
    image = operator.wait_import(image_id)
    assert image["status"] == "active", (image, operator.tail(operator.log))
    assert image["glance_ext_convert_source_format"] == "qcow2"
    _same_data(operator, image, images["raw"], tmp_path)


def test_glance_cli_web_download(operator, images, web):
    shutil.copy(images["qcow2"], os.path.join(web.directory, "cli.qcow2"))
    out = operator.glance(
        "image-create-via-import", "--disk-format", "qcow2",
        "--container-format", "bare", "--name", "cli-web",
        "--import-method", "web-download", "--uri",
        web.url_for("cli.qcow2")).stdout
    image = operator.wait_import(client.parse_table(out)["id"])
    assert image["status"] == "active", (image, operator.tail(operator.log))
    assert image["disk_format"] == "raw"


def test_invalid_property_is_refused_in_both_clients(operator):
    proc = operator.glance("image-create", "--name", "bad", "--property",
                           "hw_disk_bus=foo", check=False)
    assert proc.returncode != 0
    assert "'hw_disk_bus'" in proc.stderr and "virtio" in proc.stderr, \
        proc.stderr
    proc = operator.openstack("image", "create", "--property",
                              "hw_disk_bus=foo", "bad", check=False)
    assert proc.returncode != 0
    assert "'hw_disk_bus'" in proc.stderr and "virtio" in proc.stderr, \
        proc.stderr
    assert "Bad Request" in proc.stderr


def test_restart_logs_no_error_for_finished_imports(operator, images):
    finished = operator.import_with_glance(images["qcow2"], "qcow2")
    assert finished["status"] == "active"
    offset = operator.restart()
    # The start-up recovery runs in a thread of each worker; a request
    # that gets an answer after it means both workers are up.
    time.sleep(3)
    operator.api("/v2/images")
    with open(operator.log, errors="replace") as fh:
        fh.seek(offset)
        after = fh.read()
    # Glance itself logs ERROR at start for store drivers it cannot load
    # (cinder without os-brick); no ERROR may be about an import, a lock
    # or glance_ext, and nothing about the finished image at all.
    errors = [line for line in after.splitlines() if " ERROR " in line]
    about_imports = [line for line in errors if any(
        word in line for word in ("glance_ext", "lock", "import", "task"))]
    assert not about_imports, after
    assert "nterrupted" not in after, after
    assert finished["id"] not in after, after


def test_uwsgi_without_python_interpreter_names_the_setting(operator,
                                                            images):
    operator.restart(python_interpreter=False)
    try:
        image = operator.import_with_glance(images["qcow2"], "qcow2")
    finally:
        operator.restart(python_interpreter=True)
    assert image["status"] == "queued"
    message = operator.task_message(image["id"])
    assert "[wsgi] python_interpreter" in message, message
    assert "uwsgi" in message and "not a Python interpreter" in message
    values = " ".join("%s=%s" % kv for kv in image.items()
                      if kv[0].startswith("glance_ext_"))
    assert "rejected" not in values, image
