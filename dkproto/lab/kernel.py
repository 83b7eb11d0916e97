"""The lab's kernel and initramfs (``dkproto lab prepare``).

Finds the tools, fetches the Debian kernel, builds and caches the initramfs.

The cache lives in ``$XDG_CACHE_HOME/dkproto/lab/<kernel-version>/`` (``~/.cache`` when the
variable is unset), keyed by kernel version: ``vmlinuz``, ``modules/`` (only the modules the
lab uses, with the kernel's ``modules.*`` index files) and ``initrd-<digest>.img``, where the
digest covers the module set and the init script, so a change rebuilds the image.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dkproto.errors import MissingToolError, NotFoundError, NotPermittedError
from dkproto.lab.guest_init import INIT_SCRIPT
from dkproto.lab.initramfs import BASE_MODULES, InitramfsManifest, module_closure, write_initramfs

__all__ = [
    "TOOLS",
    "LabImage",
    "cache_root",
    "cached_versions",
    "find_tool",
    "install_packages",
    "missing_packages",
    "prepare",
]

log = logging.getLogger("dkproto.lab")

#: program -> Debian package that provides it.
TOOLS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "depmod": "kmod",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
}
#: Optional tools used inside the VM (through the shared host root); tshark reads the kernel's usbmon
#: captures and dkproto's pcapng exports (tests/lab/test_usbmon.py, docs/capture.md).
OPTIONAL_TOOLS: dict[str, str] = {"lsusb": "usbutils", "usbip": "usbip", "tshark": "tshark"}

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/dkproto/lab`` (``~/.cache/dkproto/lab`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dkproto" / "lab"


def find_tool(name: str) -> str:
    """The path of a program the lab needs.

    Raises:
        MissingToolError: the program is not on ``PATH`` (or in ``/sbin``); the message names
            the Debian package to install.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if name == "busybox":
        # The lab needs a *static* busybox (the initramfs has no libc).
        for cand in BUSYBOX_CANDIDATES:
            if os.path.exists(cand) and _is_static(cand):
                return cand
        path = None
    if path is None:
        pkg = TOOLS.get(name) or OPTIONAL_TOOLS.get(name, name)
        raise MissingToolError(
            f"the lab needs {name!r} and it is not installed: run "
            f"'apt-get update && apt-get install -y {pkg}' (as root), then 'dkproto lab prepare'"
        )
    return path


def missing_packages(include_optional: bool = True) -> list[str]:
    """The Debian packages whose programs the lab needs and cannot find (empty when all are here)."""
    missing = []
    wanted = dict(TOOLS)
    if include_optional:
        wanted.update(OPTIONAL_TOOLS)
    for tool, pkg in wanted.items():
        try:
            find_tool(tool)
        except MissingToolError:
            if pkg not in missing:
                missing.append(pkg)
    return missing


def install_packages(packages: Iterable[str], *, update_only: bool = False) -> None:
    """Install Debian packages with apt-get (as root): what ``dkproto lab prepare --install`` does.

    Args:
        packages: the packages to install (none: nothing is run unless ``update_only``).
        update_only: only refresh apt's package lists (``apt-get update``), which the kernel
            download needs on a machine whose lists are empty.

    Raises:
        NotPermittedError: not root.
        MissingToolError: apt-get is missing or the install failed (the message has apt's last words).
    """
    pkgs = list(packages)
    if not pkgs and not update_only:
        return
    if os.geteuid() != 0:
        raise NotPermittedError(
            f"installing {' '.join(pkgs) or 'nothing (apt-get update)'} needs root: run "
            f"'sudo apt-get update && sudo apt-get install -y {' '.join(pkgs)}' or 'sudo dkproto lab prepare --install'"
        )
    apt = shutil.which("apt-get")
    if apt is None:
        raise MissingToolError(f"the lab needs {' '.join(pkgs) or 'apt'} and this machine has no apt-get: "
                               "install QEMU, a static busybox and kmod by hand")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmds = [[apt, "update", "-q"]]
    if pkgs:
        cmds.append([apt, "install", "-y", "-q", "--no-install-recommends", *pkgs])
    for cmd in cmds:
        log.info("run %s", " ".join(cmd))
        proc = subprocess.run(cmd, check=False, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise MissingToolError(f"'{' '.join(cmd[1:3])} ...' failed with status {proc.returncode}: {tail[0]}")


def _is_static(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return b"ld-linux" not in head and b"/lib64/ld" not in head


@dataclass(frozen=True, kw_only=True, slots=True)
class LabImage:
    """A prepared lab: the kernel and the initramfs to boot.

    Attributes:
        kernel_version: ``uname -r`` inside the VM, e.g. ``6.1.0-56-amd64``.
        vmlinuz: the kernel image.
        initrd: the initramfs image.
        modules: names of the modules it carries.
    """

    kernel_version: str
    vmlinuz: Path
    initrd: Path
    modules: tuple[str, ...]


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    log.debug("run %s", " ".join(cmd))
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]


def kernel_package() -> str:
    """The versioned kernel package that ``linux-image-amd64`` depends on (from ``apt-cache``)."""
    try:
        out = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise MissingToolError(
            "cannot ask apt which kernel to use ('apt-cache depends linux-image-amd64' failed): "
            "run 'apt-get update' (as root) on a Debian or Ubuntu machine"
        ) from exc
    m = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*)", out)
    if not m:
        raise NotFoundError(f"'apt-cache depends linux-image-amd64' names no kernel package: {out.strip()!r}")
    return m.group(1)


def cached_versions() -> list[str]:
    """The kernel versions already prepared in the cache, oldest first."""
    root = cache_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "vmlinuz").exists() and (p / "modules").is_dir())


def _fetch_kernel(work: Path) -> tuple[str, Path]:
    """Download and unpack the Debian kernel into ``work``; (version, unpacked tree)."""
    find_tool("apt-get")
    find_tool("dpkg-deb")
    pkg = kernel_package()
    log.info("downloading %s", pkg)
    try:
        _run(["apt-get", "download", pkg], cwd=str(work))
    except subprocess.CalledProcessError as exc:
        raise MissingToolError(
            f"'apt-get download {pkg}' failed ({exc.stderr.strip()[-200:]}): run 'apt-get update' and retry"
        ) from exc
    debs = sorted(work.glob(f"{pkg}_*.deb"))
    if not debs:
        raise NotFoundError(f"'apt-get download {pkg}' left no .deb in {work}")
    tree = work / "tree"
    _run(["dpkg-deb", "-x", str(debs[0]), str(tree)])
    versions = [p.name for p in (tree / "lib" / "modules").iterdir()]
    if len(versions) != 1:
        raise NotFoundError(f"{debs[0].name} holds {len(versions)} module trees, expected one")
    return versions[0], tree


def _install_kernel(version: str, tree: Path, modules: Iterable[str]) -> Path:
    """Copy vmlinuz and the needed modules (with depmod's index) into the cache."""
    dest = cache_root() / version
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "modules").mkdir(parents=True)
    vmlinuz = next((tree / "boot").glob("vmlinuz-*"))
    shutil.copy2(vmlinuz, staging / "vmlinuz")
    depmod = find_tool("depmod")
    _run([depmod, "-b", str(tree), version])
    mod_root = tree / "lib" / "modules" / version
    dep_text = (mod_root / "modules.dep").read_text()
    wanted = module_closure(dep_text, modules)
    for rel in wanted:
        (staging / "modules" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(mod_root / rel, staging / "modules" / rel)
    for p in mod_root.glob("modules.*"):
        shutil.copy2(p, staging / "modules" / p.name)
    (staging / "kernel.json").write_text(json.dumps({"version": version, "modules": sorted(wanted)}, indent=1))
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest


def prepare(
    *,
    extra_modules: Iterable[str] | None = None,
    refresh: bool = False,
    version: str | None = None,
) -> LabImage:
    """Make the lab ready to boot, doing only what is not cached yet.

    Args:
        extra_modules: kernel modules to carry besides :data:`BASE_MODULES` (default: the
            ``modules`` of every device definition found).
        refresh: download the kernel again even if one is cached.
        version: use this cached kernel version (default: the newest cached, or download).

    Raises:
        MissingToolError: QEMU, busybox, kmod, dpkg or apt is missing (the message says how to
            install it), or the kernel cannot be downloaded.
    """
    find_tool("qemu-system-x86_64")
    busybox = find_tool("busybox")
    if extra_modules is None:
        from dkproto.lab.devices import load_definitions

        extra_modules = [m for d in load_definitions().values() for m in d.modules]
    modules = tuple(dict.fromkeys(list(BASE_MODULES) + list(extra_modules)))
    cached = cached_versions()
    if version is None and cached and not refresh:
        version = cached[-1]
    kdir = cache_root() / version if version else None
    have = set()
    if kdir is not None and (kdir / "kernel.json").exists():
        have = {p.rsplit("/", 1)[-1] for p in json.loads((kdir / "kernel.json").read_text())["modules"]}
    from dkproto.lab.initramfs import module_name

    need_fetch = kdir is None or refresh or not all(
        any(module_name(h) == module_name(m) for h in have) for m in modules
    )
    if need_fetch:
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="dkproto-lab-kernel-") as tmp:
            version, tree = _fetch_kernel(Path(tmp))
            kdir = _install_kernel(version, tree, modules)
        log.info("kernel %s unpacked and trimmed in %.1f s", version, time.monotonic() - t0)
    assert kdir is not None and version is not None
    mod_root = kdir / "modules"
    dep_text = (mod_root / "modules.dep").read_text()
    wanted = module_closure(dep_text, modules)
    manifest = InitramfsManifest(
        kernel_version=version,
        modules=wanted,
        files={"bin/busybox": busybox},
        texts={"init": (INIT_SCRIPT.encode(), 0o755)},
    )
    initrd = kdir / f"initrd-{manifest.digest()}.img"
    if not initrd.exists():
        # The module tree in the cache mirrors lib/modules/VERSION; write_initramfs reads from it.
        shim = kdir / "tree"
        link = shim / "lib" / "modules" / version
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(mod_root)
        for old in kdir.glob("initrd-*.img"):
            old.unlink()
        size = write_initramfs(manifest, shim, initrd)
        log.info("initramfs %s: %d modules, %.1f MB", initrd.name, len(wanted), size / 1e6)
    return LabImage(
        kernel_version=version,
        vmlinuz=kdir / "vmlinuz",
        initrd=initrd,
        modules=tuple(m.rsplit("/", 1)[-1] for m in wanted),
    )
