"""The sandbox every submission's code runs in (vitcourse.grading.isolation), tried without kernels."""

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vitcourse.grading import isolation
from vitcourse.grading.isolation import Isolation, IsolationUnavailable, Limits

REQUIRED = os.environ.get("VITCOURSE_REQUIRE_ISOLATION") == "1"
needs_isolation = pytest.mark.skipif(
    bool(isolation.problem()) and not REQUIRED, reason=f"no isolation here: {isolation.problem()}"
)


def _run(tmp_path: Path, code: str, limits: Limits | None = None, **environment) -> subprocess.CompletedProcess:
    """Run ``code`` with this Python, confined, writing only ``tmp_path/box``."""
    box = tmp_path / "box"
    box.mkdir(exist_ok=True)
    uid = isolation.sandbox_uids(1)[0]
    if uid is not None:
        os.chown(box, uid, uid)
    confined = Isolation(limits or Limits(processes=64, memory_mb=1024, file_mb=1))
    command = confined.command(
        [sys.executable, "-c", textwrap.dedent(code)],
        writable=box,
        env=confined.environment(box, environment),
        uid=uid,
    )
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@needs_isolation
def test_no_network_not_even_loopback(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        done = _run(
            tmp_path,
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
            except OSError as error:
                print(type(error).__name__)
            """,
        )
    assert done.stdout.strip() == "ConnectionRefusedError", done.stderr


@needs_isolation
def test_reads_only_the_environment_and_writes_only_its_folder(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("clave")
    done = _run(
        tmp_path,
        f"""
        import os, sys
        from pathlib import Path
        for path in [{str(secret)!r}, {str(Path(isolation.__file__).parents[2] / "README.md")!r},
                     "/etc/pip.conf", "/etc/shadow", {str(Path.home() / ".bashrc")!r}]:
            print(Path(path).exists(), end=" ")
        print()
        for path in [{str(tmp_path / "out.txt")!r}, "/usr/evil", {str(Path(sys.executable).parent / "evil")!r}]:
            try:
                Path(path).write_text("x")
                print("inside", end=" ")  # a copy of the folder in the sandbox's own /tmp, at most
            except OSError:
                print("refused", end=" ")
        print()
        Path("mine.txt").write_text("ok")
        import torch, vitcourse
        print(sorted(k for k in os.environ if "SECRET" in k), os.getcwd() == os.environ["HOME"])
        """,
        PYTHONPATH=str(Path(isolation.__file__).parents[2]),
    )
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["False"] * 5, done.stderr  # the repository is there only as the package
    assert lines[1].split()[1:] == ["refused", "refused"]
    assert lines[2:] == ["[] True"], done.stderr
    assert (tmp_path / "box" / "mine.txt").read_text() == "ok" and not (tmp_path / "out.txt").exists()


@needs_isolation
def test_the_environment_is_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hf_xxx")
    done = _run(tmp_path, "import os; print('SECRET_TOKEN' in os.environ, os.environ['ONLY_THIS'])", ONLY_THIS="1")
    assert done.stdout.split() == ["False", "1"], done.stderr


@needs_isolation
def test_processes_memory_files_are_limited(tmp_path):
    done = _run(
        tmp_path,
        """
        import os, time
        children = 0
        try:
            for _ in range(500):
                if os.fork() == 0:
                    time.sleep(1)
                    os._exit(0)
                children += 1
        except OSError as error:
            print(type(error).__name__, children < 64)
        try:
            bytearray(4 * 2**30)
        except MemoryError:
            print("MemoryError")
        try:
            open("big", "wb").write(bytes(2 * 2**20))
        except OSError as error:
            print(error.errno)
        print(os.getuid() != 0, open("/proc/self/status").read().split("NoNewPrivs:")[1].split()[0])
        """,
    )
    assert done.stdout.split() == ["BlockingIOError", "True", "MemoryError", "27", "True", "1"], done.stderr


@needs_isolation
def test_killing_the_sandbox_kills_everything_it_started(tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    uid = isolation.sandbox_uids(1)[0]
    if uid is not None:
        os.chown(box, uid, uid)
    confined = Isolation()
    # A duration no other process on the machine has, so only this test's sleeper counts.
    duration = f"300.{os.getpid()}"
    code = (
        "import os, subprocess, time\n"
        f"subprocess.Popen(['sleep', '{duration}'], start_new_session=True)\n"
        "os.setsid()\ntime.sleep(300)"
    )
    process = confined.popen(
        confined.command([sys.executable, "-c", code], writable=box, env=confined.environment(box, {}), uid=uid)
    )
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    confined.kill(process)

    def sleepers() -> list[str]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == f"sleep\x00{duration}\x00".encode():
                    found.append(pid)
            except OSError:
                continue
        return found

    # The kernel kills the namespace's processes when its first one dies, but a loaded
    # machine can take a moment to get to them: wait for that, not for the sleep to end.
    deadline = time.monotonic() + 20
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sleepers() == []


def test_without_bubblewrap_it_says_so_in_one_line(monkeypatch):
    monkeypatch.setenv("VITCOURSE_BWRAP", "/nonexistent/bwrap")
    assert isolation.problem().startswith("bubblewrap could not start")
    with pytest.raises(IsolationUnavailable, match="pass --unsafe-no-isolation") as raised:
        Isolation()
    assert "\n" not in str(raised.value)
    unsafe = Isolation(unsafe=True)  # only the limits: the command runs as it is, through confine.py
    command = unsafe.command(["/bin/true"], writable=Path("/tmp"), env={})
    assert command[-2:] == ["--", "/bin/true"] and "bwrap" not in " ".join(command)
