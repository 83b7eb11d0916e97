"""Lab preparation without a VM: tool look-up messages, the cache location, the kernel package name,
QEMU command line and the CLI's one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from dkproto.errors import MissingToolError
from dkproto.lab import kernel as prep
from dkproto.lab.devices import parse_definition
from dkproto.lab.kernel import LabImage
from dkproto.lab.vm import qemu_command


def test_missing_tool_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prep.shutil, "which", lambda *a, **k: None)
    with pytest.raises(MissingToolError) as exc:
        prep.find_tool("qemu-system-x86_64")
    assert "apt-get update && apt-get install -y qemu-system-x86" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_cache_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert prep.cache_root() == tmp_path / "dkproto" / "lab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert prep.cache_root() == Path.home() / ".cache" / "dkproto" / "lab"


def test_kernel_package_from_apt_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n"
    monkeypatch.setattr(prep, "_run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, out, ""))
    assert prep.kernel_package() == "linux-image-6.1.0-56-amd64"

    def fail(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        raise OSError("no apt-cache")

    monkeypatch.setattr(prep, "_run", fail)
    with pytest.raises(MissingToolError, match="apt-get update"):
        prep.kernel_package()


def test_qemu_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dkproto.lab.vm.find_tool", lambda name: "/usr/bin/" + name)
    image = LabImage(kernel_version="6.1.0-56-amd64", vmlinuz=Path("/k"), initrd=Path("/i"), modules=())
    kbd = parse_definition({"name": "k", "kind": "qemu", "qemu": ["-device", "usb-kbd,bus={bus}"],
                            "modules": ["usbhid"], "expect": ["0627:0001"]})
    disk = parse_definition({"name": "d", "kind": "qemu",
                             "qemu": ["-drive", "if=none,id=s,format=raw,file={image:disk.img:2}"],
                             "modules": ["usb_storage"], "expect": ["46f4:0001"]})
    cmd = qemu_command(image, tmp_path, [kbd, disk], udcs=3, cpus=2)
    joined = " ".join(cmd)
    for part in ("-accel tcg,thread=multi", "-cpu max", "-m 1024", "-smp 2", "-nographic", "-no-reboot",
                 "-net none", "-device qemu-xhci,id=xhci", "-device usb-kbd,bus=xhci.0",
                 "mount_tag=hostroot,security_model=none,readonly=on", f"local,path={tmp_path},mount_tag=dklab"):
        assert part in joined, part
    append = cmd[cmd.index("-append") + 1]
    assert "dklab.udcs=3" in append and "usb_storage" in append and "usbhid" in append
    assert (tmp_path / "disk.img").stat().st_size == 2 * 1024 * 1024
    assert f"file={tmp_path}/disk.img" in joined


def test_one_vcpu_unless_the_environment_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    from dkproto.lab import vm

    monkeypatch.delenv("DKPROTO_LAB_CPUS", raising=False)
    assert vm.guest_cpus() == 1  # two TCG vCPU threads ran the lab tier slower (see its docstring)
    monkeypatch.setenv("DKPROTO_LAB_CPUS", "2")
    assert vm.guest_cpus() == 2
    monkeypatch.setenv("DKPROTO_LAB_CPUS", "99")
    assert vm.guest_cpus() == 8
    monkeypatch.setenv("DKPROTO_LAB_CPUS", "many")
    assert vm.guest_cpus() == 1  # ignored, with a warning
    monkeypatch.setattr("dkproto.lab.vm.find_tool", lambda name: "/usr/bin/" + name)
    image = LabImage(kernel_version="6.1.0-56-amd64", vmlinuz=Path("/k"), initrd=Path("/i"), modules=())
    monkeypatch.setenv("DKPROTO_LAB_CPUS", "2")
    cmd = qemu_command(image, Path("/tmp"), [])
    assert cmd[cmd.index("-smp") + 1] == "2"
    monkeypatch.delenv("DKPROTO_LAB_CPUS")
    cmd = qemu_command(image, Path("/tmp"), [])
    assert cmd[cmd.index("-smp") + 1] == "1"


def test_cli_missing_qemu_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from dkproto.cli import main

    monkeypatch.setattr(prep.shutil, "which", lambda *a, **k: None)
    with pytest.raises(SystemExit) as exc:
        main(["lab", "run", "--", "true"])
    assert exc.value.code == 1


def test_cli_devices_lists_the_definitions() -> None:
    from dkproto.cli import cli

    res = CliRunner().invoke(cli, ["lab", "devices"])
    assert res.exit_code == 0
    assert "qemu-usb-kbd" in res.output and "ffs-vendor" in res.output and "capture-uvc" in res.output
