"""Running a submission's code confined by the operating system (bubblewrap and resource limits).

Everything the grader runs of a student (the notebook's kernel, the process that tests
their definitions) starts through :meth:`Isolation.command`, which wraps it in
`bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian's ``bubblewrap``,
``bwrap``) and then :mod:`vitcourse.grading.confine`:

* **no network**: a network namespace of its own, with nothing but an unconnected
  loopback; ``127.0.0.1`` is not the grader's machine;
* **a filesystem it can read only where it must**: ``/usr`` and ``/etc``, the Python
  environment (its prefixes and site-packages), the ``vitcourse`` package folder (not
  the repository around it), the data folders the package reads (read-only), the TP's
  ``pythonpath`` folders, and files named by the grader. Home folders, the instructor's
  files, other submissions, the TP's solution and the private tests are not there;
* **writable only in its own folder**, plus a small ``/tmp`` in memory;
* **its own process tree** (a PID namespace): killing the sandbox kills everything it
  started, and it dies with the process that started it;
* **resource limits** (:class:`Limits`): memory, processes, open files, file size;
  as root, the code also runs as an unprivileged user id (root is exempt from the
  process limit), one per submission graded at the same time;
* **a clean environment**: exactly the variables the grader passes, no tokens or
  paths of the instructor's shell.

As an unprivileged user, bubblewrap needs user namespaces (Debian and Ubuntu allow them;
some hardened kernels and containers don't). :func:`problem` says in one line why
isolation is unavailable; the grader then refuses to run submissions unless told
``--unsafe-no-isolation``, which keeps only the resource limits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "CONNECTION_PATH",
    "Isolation",
    "IsolationUnavailable",
    "Limits",
    "acquire_uids",
    "problem",
    "release_uids",
    "sandbox_uids",
]

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONFINE = Path(__file__).resolve().with_name("confine.py")
# Where a kernel's connection file appears inside its sandbox (read by confine.py as root).
CONNECTION_PATH = "/run/vitcourse/connection.json"
# As root, submissions run as these user ids (one per submission graded at the same time),
# from the range systemd leaves for dynamic users: no account has them.
UID_BASE = 61184
MiB = 2**20
# What programs read from /etc (the dynamic linker, fonts, time zone, user names, MIME
# types, the alternatives' links): the rest (pip's and npm's configuration, credentials,
# keys) stays out.
ETC = (
    "alternatives",
    "ca-certificates",
    "fonts",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ImageMagick-6",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "magic.mime",
    "matplotlibrc",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "ssl",
    "timezone",
    "xdg",
)


class IsolationUnavailable(RuntimeError):
    """Submissions can't be isolated on this machine; the message says why, in one line."""


@dataclass
class Limits:
    """Resource limits of each process a submission runs (``setrlimit``, soft = hard).

    Attributes:
        memory_mb: memory a process may allocate (``RLIMIT_DATA``: heap and anonymous
            mappings; code and shared libraries don't count, so importing torch costs little).
        processes: processes and threads of the sandbox's user (``RLIMIT_NPROC``).
        open_files: open file descriptors per process (``RLIMIT_NOFILE``).
        file_mb: the largest file a process may write (``RLIMIT_FSIZE``).
        tmp_mb: size of the in-memory ``/tmp`` and ``/dev/shm``.
    """

    memory_mb: int = 6144
    processes: int = 256
    open_files: int = 1024
    file_mb: int = 512
    tmp_mb: int = 256

    def rlimits(self) -> dict[str, int]:
        return {
            "RLIMIT_DATA": self.memory_mb * MiB,
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_FSIZE": self.file_mb * MiB,
            "RLIMIT_CORE": 0,
        }


def _bwrap() -> str | None:
    return os.environ.get("VITCOURSE_BWRAP") or shutil.which("bwrap")


def _namespace_options(root: bool) -> list[str]:
    options = ["--die-with-parent", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    options += ["--unshare-cgroup-try", "--hostname", "vitcourse"]
    if not root:  # an unprivileged user needs a user namespace to mount anything
        options += ["--unshare-user", "--disable-userns"]
    return options


@cache
def _probe(bwrap: str | None, root: bool) -> str:
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if not bwrap:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    command = [bwrap, *_namespace_options(root), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not start ({error})"
    if completed.returncode:
        reason = (completed.stderr.strip().splitlines() or [f"exit status {completed.returncode}"])[-1]
        return f"bubblewrap cannot create namespaces here ({reason}); are user namespaces allowed?"
    return ""


def problem() -> str:
    """Why submissions can't be isolated on this machine, in one line, or ``""`` when they can."""
    return _probe(_bwrap(), os.geteuid() == 0)


def sandbox_uids(count: int) -> list[int | None]:
    """The first ``count`` user ids submissions may run as: unprivileged ids as root, else ``None``."""
    if os.geteuid() != 0:
        return [None] * count
    return [UID_BASE + index for index in range(count)]


_uids_lock = threading.Lock()
_uids_taken: set[int] = set()


def acquire_uids(count: int) -> list[int | None]:
    """``count`` user ids no other batch of this process is using (``None`` each when not root).

    Every submission graded at the same time runs as its own user, so the process limit of
    one can't be used up by another.
    """
    if os.geteuid() != 0:
        return [None] * count
    with _uids_lock:
        free = (UID_BASE + index for index in range(10_000) if UID_BASE + index not in _uids_taken)
        chosen = [next(free) for _ in range(count)]
        _uids_taken.update(chosen)
    return chosen


def release_uids(uids: list[int | None]) -> None:
    """Give back what :func:`acquire_uids` returned."""
    with _uids_lock:
        _uids_taken.difference_update(uid for uid in uids if uid is not None)


def _with_real(paths) -> list[Path]:
    """Each path as given (absolute) and, when it differs, resolved."""
    found = []
    for path in paths:
        path = Path(os.path.abspath(path))
        for candidate in (path, path.resolve()):
            if candidate.exists() and candidate not in found:
                found.append(candidate)
    return found


def python_paths() -> list[Path]:
    """The Python environment: prefixes, site-packages, the interpreter's folder."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates |= set(site.getsitepackages())
    user = site.getusersitepackages()
    if user in sys.path:
        candidates.add(user)
    candidates.add(str(Path(sys.executable).parent))
    candidates.add(str(Path(sys.executable).resolve().parent.parent))
    return _with_real(sorted(candidates))


def data_paths() -> dict[str, Path]:
    """Data folders the package reads, by the environment variable that names them."""
    found = {}
    try:
        from vitcourse.data.remote import data_root

        found["VITCOURSE_DATA"] = data_root()
    except Exception:  # noqa: BLE001, S110 (no data module: nothing to show)
        pass
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    hf_home = Path(os.environ.get("HF_HOME") or cache / "huggingface")
    # The Hub's caches, not HF_HOME itself: the instructor's token lives there.
    found["HF_HUB_CACHE"] = Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub")
    found["HF_DATASETS_CACHE"] = Path(os.environ.get("HF_DATASETS_CACHE") or hf_home / "datasets")
    found["TORCH_HOME"] = Path(os.environ.get("TORCH_HOME") or cache / "torch")
    return {name: path.resolve() for name, path in found.items() if Path(path).is_dir()}


def _covered(path: Path, mounts: list[Path]) -> bool:
    return any(path == mount or mount in path.parents for mount in mounts)


def _minimal(paths: list[Path]) -> list[Path]:
    """Drop paths inside another one of the list (their parent's mount shows them)."""
    unique = sorted(set(paths), key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for path in unique:
        if not _covered(path, kept):
            kept.append(path)
    return kept


class Isolation:
    """Builds the command lines that run a submission's code confined (see the module docstring).

    Args:
        limits: resource limits of every confined process.
        unsafe: run without bubblewrap (resource limits only); nothing is isolated.
        readable: more folders (or files) the confined code may read.
    """

    def __init__(self, limits: Limits | None = None, unsafe: bool = False, readable: list[Path] = ()) -> None:
        self.limits = limits or Limits()
        self.unsafe = unsafe
        self.root = os.geteuid() == 0
        self.bwrap = None if unsafe else _bwrap()
        if not unsafe:
            reason = problem()
            if reason:
                raise IsolationUnavailable(
                    f"cannot isolate submissions on this machine: {reason}; "
                    "to grade them anyway, unconfined, pass --unsafe-no-isolation"
                )
        self.data = data_paths()
        self.readable = _minimal(_with_real([PACKAGE_DIR, *python_paths(), *self.data.values(), *readable]))

    def environment(self, home: Path, extra: dict[str, str]) -> dict[str, str]:
        """The whole environment of confined code: ``extra`` on top of a clean base."""
        paths = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        env = {
            "PATH": os.pathsep.join(dict.fromkeys(paths)),
            "HOME": str(home),
            "TMPDIR": "/tmp" if not self.unsafe else str(home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
            "JUPYTER_RUNTIME_DIR": str(home / ".jupyter-runtime"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update({name: str(path) for name, path in self.data.items()})
        env.update(extra)
        return env

    def command(
        self,
        argv: list[str],
        *,
        writable: Path,
        env: dict[str, str],
        cwd: Path | None = None,
        readable: list[Path] = (),
        uid: int | None = None,
        connection: str | None = None,
    ) -> list[str]:
        """The command line that runs ``argv`` confined.

        Args:
            argv: the command; ``argv[0]`` an absolute path.
            writable: the one folder it may write (it must exist, owned by ``uid`` as root).
            env: its whole environment.
            cwd: where it starts (default ``writable``).
            readable: more paths it may read, for this command only.
            uid: as root, the unprivileged user id it runs as.
            connection: a Jupyter connection file (may be ``{connection_file}``) to copy
                to ``writable/.connection.json``, readable by the confined kernel.
        """
        writable = Path(writable).resolve()
        config = {
            "limits": self.limits.rlimits(),
            "uid": uid if self.root else None,
            "env": env,
            "cwd": str(Path(cwd or writable)),
            "connection": None,
        }
        if self.unsafe:
            if connection:
                config["connection"] = [connection, str(writable / ".connection.json")]
            return [sys.executable, "-I", "-S", str(CONFINE), json.dumps(config), "--", *argv]
        if connection:
            config["connection"] = [CONNECTION_PATH, str(writable / ".connection.json")]
        readable_here = _minimal([p for p in _with_real(readable) if not _covered(p, self.readable)])
        binds = _minimal([*self.readable, *readable_here])
        options = [self.bwrap, *_namespace_options(self.root)]
        options += ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
        for name in ETC:
            options += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(name):
                options += ["--symlink", os.readlink(name), name]
            elif os.path.isdir(name):
                options += ["--ro-bind", name, name]
        size = str(self.limits.tmp_mb * MiB)
        options += ["--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm", "--proc", "/proc"]
        options += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
        system = [Path(p) for p in ("/usr", "/dev", "/proc")] + [Path("/etc") / name for name in ETC]
        mounts = [p for p in binds if not _covered(p, system)]
        mounts = [p for p in mounts if p != writable] + [writable]
        created: list[str] = []
        for mount in mounts:
            others = [*system, *(m for m in mounts if m != mount)]
            for parent in reversed(mount.parents):
                if parent in (Path("/"), Path("/tmp")) or _covered(parent, others) or str(parent) in created:
                    continue
                created.append(str(parent))
                options += ["--perms", "0755", "--dir", str(parent)]
        for path in mounts[:-1]:
            options += ["--ro-bind", str(path), str(path)]
        options += ["--bind", str(writable), str(writable)]
        if connection:
            options += ["--perms", "0700", "--dir", str(Path(CONNECTION_PATH).parent)]
            options += ["--ro-bind", connection, CONNECTION_PATH]
        options += ["--chdir", config["cwd"]]
        return [*options, sys.executable, "-I", "-S", str(CONFINE), json.dumps(config), "--", *argv]

    def popen(self, command: list[str], log: Path | None = None) -> subprocess.Popen:
        """Start a confined command (from :meth:`command`), its output to ``log`` (or nowhere)."""
        stream = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed by the caller's wait)
        try:
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=stream, stderr=stream, start_new_session=True
            )
        finally:
            if log:
                stream.close()

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """Kill a confined command and everything it started, and reap it."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            process.kill()
        except OSError:
            pass
        process.wait()
