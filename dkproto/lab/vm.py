"""Boot the lab VM, run one job in it, and always clean up.

The host writes ``job.json`` and ``job.sh`` into a fresh results folder, shares it (9p tag
``dklab``) with the guest together with the host root (9p tag ``hostroot``, read-only),
boots QEMU (TCG) on the prepared kernel and initramfs, relays the console, and returns the
job's exit status. QEMU is killed when the job ends badly, on timeout, on Ctrl-C and even if
this process dies (``PR_SET_PDEATHSIG``); a hang shows the tail of the console.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dkproto.errors import DkError, DkTimeoutError, MissingToolError
from dkproto.lab.devices import DeviceDefinition, load_definitions, select
from dkproto.lab.guest_init import MARK
from dkproto.lab.initramfs import BOOT_MODULES
from dkproto.lab.kernel import LabImage, find_tool, prepare

__all__ = ["ENV_PASSTHROUGH", "LabBootError", "LabResult", "LabTimeoutError", "qemu_command", "run"]

log = logging.getLogger("dkproto.lab")

#: Host environment variables passed to the command in the VM (plus every ``DKPROTO_*``).
ENV_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "VIRTUAL_ENV", "PYTHONPATH",
                   "PYTHONHASHSEED", "PYTHONWARNINGS", "COLUMNS", "NO_COLOR", "FORCE_COLOR",
                   "PYTEST_ADDOPTS", "XDG_CACHE_HOME")
DEFAULT_TIMEOUT = 600.0
DEFAULT_UDCS = 4
TAIL_LINES = 40


class LabTimeoutError(DkTimeoutError):
    """The lab did not finish in time; ``console_tail`` holds the last console lines."""

    def __init__(self, message: str, console_tail: str = "") -> None:
        super().__init__(message)
        self.console_tail = console_tail


class LabBootError(DkError):
    """The guest failed before running the job (no 9p, a module missing...)."""

    def __init__(self, message: str, console_tail: str = "") -> None:
        super().__init__(message)
        self.console_tail = console_tail


@dataclass(kw_only=True, slots=True)
class LabResult:
    """The outcome of one lab run.

    Attributes:
        returncode: the command's exit status.
        output: what the command wrote (stdout and stderr both go to the console).
        console: the whole console text, kernel messages included.
        boot_seconds: host wall time from starting QEMU to the guest being ready.
        seconds: host wall time of the whole run.
        results_dir: the results folder (kept only with ``keep_results=True``).
        warnings: ``@@dklab:warn`` lines from the guest.
        marks: (host seconds since start, text) of every ``@@dklab:test`` line the job
            printed (the pytest lab session prints one as each test starts).
    """

    returncode: int
    output: bytes = b""
    console: str = ""
    boot_seconds: float = 0.0
    seconds: float = 0.0
    results_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)


def _pdeathsig() -> None:  # runs in the child before exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _expand_qemu(args: Iterable[str], share: Path) -> list[str]:
    out = []
    for a in args:
        a = a.replace("{bus}", "xhci.0").replace("{share}", str(share))
        while "{image:" in a:
            start = a.index("{image:")
            end = a.index("}", start)
            _, name, mib = a[start + 1 : end].split(":")
            img = share / name
            with open(img, "wb") as f:
                f.truncate(int(mib) * 1024 * 1024)
            a = a[:start] + str(img) + a[end + 1 :]
        out.append(a)
    return out


def qemu_command(
    image: LabImage,
    share: Path,
    devices: Sequence[DeviceDefinition],
    *,
    udcs: int = DEFAULT_UDCS,
    mode: str = "run",
    memory: int = 1024,
    cpus: int | None = None,
) -> list[str]:
    """The QEMU command line for a lab boot (see ``docs/lab.md``); ``cpus``: see :func:`guest_cpus`."""
    qemu = find_tool("qemu-system-x86_64")
    cpus = cpus or guest_cpus()
    modules = list(BOOT_MODULES)
    for d in devices:
        if d.kind == "qemu":
            modules += [m for m in d.modules if m not in modules]
    append = (f"console=ttyS0 quiet loglevel=1 panic=-1 dklab.udcs={udcs} dklab.mode={mode} "
              f"dklab.modules={','.join(modules)}")
    cmd = [
        qemu, "-accel", "tcg,thread=multi", "-cpu", "max", "-m", str(memory), "-smp", str(cpus),
        "-nographic", "-no-reboot", "-net", "none",
        "-kernel", str(image.vmlinuz), "-initrd", str(image.initrd), "-append", append,
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={share},mount_tag=dklab,security_model=none",
        "-device", "qemu-xhci,id=xhci",
    ]
    for d in devices:
        if d.kind == "qemu":
            cmd += _expand_qemu(d.qemu_args, share)
    return cmd


def guest_cpus() -> int:
    """How many vCPUs the lab VM gets: ``DKPROTO_LAB_CPUS`` if set (1 to 8), else 1.

    Under TCG each vCPU is a host thread, and a guest with two of them ran the lab tier slower
    than a guest with one, whether the host had a core to spare or not (the cost of keeping the
    vCPUs coherent outweighed running the device side beside the test). Measured on a 2-core
    host, the README's lab tier (133 tests): quiet, 2 vCPUs 385 s (first test at 23.5 s), 1 vCPU
    350 s (15.6 s); the same ten tests with one core kept busy: 2 vCPUs 66-72 s, 1 vCPU 44-61 s
    (docs/performance.md, Lab).
    """
    env = os.environ.get("DKPROTO_LAB_CPUS", "").strip()
    if env:
        try:
            return max(1, min(int(env), 8))
        except ValueError:
            log.warning("DKPROTO_LAB_CPUS=%r is not a number: ignored", env)
    return 1


def _guest_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ENV_PASSTHROUGH or k.startswith("DKPROTO_")}
    venv_bin = os.path.dirname(sys.executable)
    path = env.get("PATH", "/usr/bin:/bin")
    if venv_bin not in path.split(":"):
        path = venv_bin + ":" + path
    env["PATH"] = path + ":/usr/sbin:/sbin"
    # Bytecode goes to the guest's RAM overlay (gone at power-off), so each module is compiled
    # once per VM rather than once per process: under TCG a compile of dkproto costs ~1 s.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["DKPROTO_LAB"] = "1"
    env["DKPROTO_LAB_RESULTS"] = "/run/dklab"
    env.setdefault("HOME", "/root")
    env.update(extra or {})
    return env


def write_job(
    share: Path,
    argv: Sequence[str],
    devices: Sequence[DeviceDefinition],
    *,
    cwd: str,
    env: dict[str, str],
    shell: bool = False,
    settle: float = 15.0,
) -> None:
    """Write ``job.json`` (for the guest agent) and ``job.sh`` (run by ``/init``) into the share."""
    job = {
        "argv": list(argv),
        "cwd": cwd,
        "env": env,
        "devices": [{"name": d.name, "path": str(d.path) if d.path else None, "spec": dict(d.spec)}
                    for d in devices],
        "settle": settle,
        "shell": shell,
    }
    (share / "job.json").write_text(json.dumps(job, indent=1))
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    script = (
        "#!/bin/sh\n"
        f"{exports}"
        f"cd {shlex.quote(cwd)} 2>/dev/null || cd /\n"
        f"exec {shlex.quote(sys.executable)} -m dkproto.lab.agent /run/dklab/job.json\n"
    )
    (share / "job.sh").write_text(script)


def precompile_sources(folders: Iterable[Path]) -> None:
    """Bring the ``__pycache__`` bytecode of ``folders`` up to date, on the host.

    The guest imports the host's files over 9p and compiles under TCG about 50x slower than
    the host does: a whole dkproto costs seconds per process there, and the pytest session's
    first test waited for its tests' compilation too. Only files whose source changed are
    compiled (as Python itself would on import, were ``PYTHONDONTWRITEBYTECODE`` unset); a
    folder that cannot be written is left alone.
    """
    import compileall

    for folder in folders:
        if folder.is_dir() and os.access(folder, os.W_OK):
            with contextlib.suppress(OSError):
                compileall.compile_dir(str(folder), quiet=2, workers=1)


def run(
    argv: Sequence[str],
    *,
    devices: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    image: LabImage | None = None,
    echo: IO[bytes] | None = None,
    shell: bool = False,
    udcs: int = DEFAULT_UDCS,
    keep_results: bool = False,
    results_dir: Path | None = None,
    on_ready: Callable[[float], None] | None = None,
    precompile: Iterable[Path] = (),
) -> LabResult:
    """Boot the lab, run ``argv`` in it (in the host's environment, chrooted), power off.

    Args:
        argv: the command, run in ``cwd`` (default: the current directory) with the host's
            ``PATH`` and virtual environment.
        devices: names of lab devices to provide (default: the definitions marked default).
        timeout: seconds for the whole run; on expiry QEMU is killed and
            :class:`LabTimeoutError` carries the console tail.
        echo: where to copy the command's output as it comes (e.g. ``sys.stdout.buffer``).
        shell: interactive: the console is the terminal (``dkproto lab shell``).
        udcs: how many ``dummy_hcd`` controllers to create (gadgets bound at once).
        keep_results: keep the results folder (returned in ``results_dir``).
        results_dir: use this (existing, empty) folder as the results share.
        precompile: source folders whose bytecode is brought up to date on the host before the
            boot, besides dkproto's own package (see :func:`precompile`).

    Raises:
        MissingToolError: QEMU or the kernel is missing (with how to install it).
        LabTimeoutError: the run did not end within ``timeout``.
        LabBootError: the guest could not set up the lab.
    """
    t0 = time.monotonic()
    image = image or prepare()
    precompile_sources([Path(__file__).resolve().parents[1], *precompile])
    available = load_definitions()
    chosen = select(list(devices) if devices is not None else None, available)
    own_share = results_dir is None
    share = Path(tempfile.mkdtemp(prefix="dkproto-lab-")) if results_dir is None else results_dir
    share.chmod(0o777)
    try:
        env_full = _guest_env(env)
        write_job(share, argv or ["/bin/sh"], chosen, cwd=cwd or os.getcwd(), env=env_full, shell=shell)
        cmd = qemu_command(image, share, chosen, udcs=udcs, mode="shell" if shell else "run")
        log.debug("qemu: %s", shlex.join(cmd))
        if shell:
            return _run_interactive(cmd, share, t0, timeout)
        result = _run_captured(cmd, share, t0, timeout, echo, on_ready)
        if keep_results:
            result.results_dir = share
        return result
    finally:
        if own_share and not keep_results:
            shutil.rmtree(share, ignore_errors=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_exit(share: Path) -> int | None:
    try:
        return int((share / "exit").read_text().strip())
    except (OSError, ValueError):
        return None


def _run_captured(
    cmd: list[str],
    share: Path,
    t0: float,
    timeout: float,
    echo: IO[bytes] | None,
    on_ready: Callable[[float], None] | None,
) -> LabResult:
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=_pdeathsig)  # noqa: PLW1509 - only prctl(), before exec
    except OSError as exc:
        raise MissingToolError(f"cannot start QEMU ({cmd[0]}): {exc.strerror}") from exc
    assert proc.stdout is not None
    console: list[bytes] = []
    tail: deque[bytes] = deque(maxlen=TAIL_LINES)
    output: list[bytes] = []
    warnings: list[str] = []
    marks: list[tuple[float, str]] = []
    in_job = False
    boot_s = 0.0
    failure = None
    buf = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = t0 + timeout
    try:
        eof = False
        while not eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LabTimeoutError(f"the lab did not finish within {timeout:.0f} s: QEMU killed",
                                      b"".join(tail).decode(errors="replace"))
            if not sel.select(min(remaining, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                eof = True
                chunk = b"\n" if buf else b""
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if eof and buf:
                lines.append(buf)
                buf = b""
            for raw in lines:
                line = raw + b"\n"
                console.append(line)
                tail.append(line)
                text = raw.rstrip(b"\r").decode(errors="replace")
                if MARK in text and not in_job or text.startswith(MARK):
                    word, _, rest = text[text.index(MARK) + len(MARK):].partition(" ")
                    if word == "ready":
                        boot_s = time.monotonic() - t0
                        if on_ready:
                            on_ready(boot_s)
                    elif word == "begin":
                        in_job = True
                    elif word == "end":
                        in_job = False
                    elif word == "fail":
                        failure = rest
                    elif word == "test":
                        marks.append((time.monotonic() - t0, rest))
                    elif word == "warn":
                        warnings.append(rest)
                        log.warning("lab: %s", rest)
                    continue
                if in_job:
                    output.append(line)
                    if echo is not None:
                        echo.write(line)
                        echo.flush()
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise LabTimeoutError(f"QEMU did not exit within {timeout:.0f} s: killed",
                              b"".join(tail).decode(errors="replace")) from None
    finally:
        _kill(proc)
        sel.close()
    console_text = b"".join(console).decode(errors="replace")
    if failure:
        raise LabBootError(f"the lab guest failed: {failure}", b"".join(tail).decode(errors="replace"))
    rc = _read_exit(share)
    if rc is None:
        raise LabBootError(f"the lab stopped without running the job (QEMU exit status {proc.returncode})",
                           b"".join(tail).decode(errors="replace"))
    return LabResult(returncode=rc, output=b"".join(output), console=console_text, boot_seconds=boot_s,
                     seconds=time.monotonic() - t0, warnings=warnings, marks=marks)


def _run_interactive(cmd: list[str], share: Path, t0: float, timeout: float) -> LabResult:
    try:
        proc = subprocess.Popen(cmd, preexec_fn=_pdeathsig)  # noqa: PLW1509 - only prctl(), before exec
    except OSError as exc:
        raise MissingToolError(f"cannot start QEMU ({cmd[0]}): {exc.strerror}") from exc
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabTimeoutError(f"the lab shell ran past {timeout:.0f} s: QEMU killed") from None
    finally:
        _kill(proc)
        if sys.stdin.isatty():
            subprocess.run(["stty", "sane"], check=False)
    rc = _read_exit(share)
    return LabResult(returncode=rc if rc is not None else proc.returncode, seconds=time.monotonic() - t0)
