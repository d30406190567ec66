"""The last step before a submission's code runs: limits, no privileges, a session of its own.

``python -I -S confine.py CONFIG -- COMMAND...`` (run by path, inside the sandbox that
:mod:`vitcourse.grading.isolation` builds; standard library only, so it starts in
milliseconds and imports nothing from the package) then, in this order:

1. reads the kernel's connection file, if ``CONFIG`` names one, while it still can;
2. sets the resource limits (``setrlimit``, soft = hard, so the code can't raise them);
3. if it runs as root, becomes the unprivileged ``uid`` of ``CONFIG`` (groups dropped):
   every capability goes with root, and the process limit counts that user's processes
   (root is exempt from ``RLIMIT_NPROC``);
4. writes the connection file where the kernel, now unprivileged, can read it;
5. starts a session of its own (an interrupt reaches the command and its children,
   nothing outside), forbids gaining privileges through ``exec`` (``no_new_privs``:
   set-user-id programs such as ``su`` stop working), and dies with its parent when
   nothing else does;
6. replaces itself by ``COMMAND`` with exactly the environment of ``CONFIG``.

``CONFIG`` is JSON: ``{"limits": {"RLIMIT_DATA": bytes, ...}, "uid": int | null,
"env": {...}, "cwd": path, "connection": [from, to] | null}``.
"""

import ctypes
import json
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: confine.py CONFIG -- COMMAND...\n")
        sys.exit(2)
    config = json.loads(argv[0])
    command = argv[2:]
    connection = config.get("connection")
    text = None
    if connection:
        with open(connection[0], encoding="utf-8") as stream:
            text = stream.read()
    for name, value in (config.get("limits") or {}).items():
        limit = getattr(resource, name, None)
        if limit is not None:
            resource.setrlimit(limit, (value, value))
    uid = config.get("uid")
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if text is not None:
        descriptor = os.open(connection[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
    try:
        os.setsid()
    except OSError:  # already the leader of its session and group
        pass
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)
    os.chdir(config.get("cwd") or ".")
    os.execve(command[0], command, config.get("env") or {})


if __name__ == "__main__":
    main(sys.argv[1:])
