"""The lab guest's ``/init`` (busybox ``sh``), kept here as text so it is part of the package.

What it does, in order:

1. mounts ``/proc``, ``/sys``, ``/dev`` and loads the boot modules (``/etc`` is empty; the
   module list comes from the kernel command line: ``dklab.modules=a,b,c``);
   ``dummy_hcd`` gets ``num=`` from ``dklab.udcs=N``;
2. mounts the host root (9p tag ``hostroot``, read-only, ``cache=loose``) and lays a tmpfs
   overlay over it at ``/root``, so the guest may write anywhere (writes stay in the VM);
3. mounts the guest's own ``proc``, ``sys``, ``dev``, ``configfs``, ``debugfs``, a fresh
   ``/run`` and ``/tmp``-safe overlay, the writable results share (9p tag ``dklab``) at
   ``/run/dklab`` and the initramfs modules at ``/lib/modules/VERSION`` inside it;
4. runs ``/run/dklab/job.sh`` (written by the host) chrooted in ``/root``, on the console;
5. powers off. The job writes its exit status to ``/run/dklab/exit``.

Lines starting with ``@@dklab:`` on the console are markers for the host.
"""

from __future__ import annotations

__all__ = ["INIT_SCRIPT", "MARK"]

#: Prefix of the marker lines the guest prints for the host.
MARK = "@@dklab:"

INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
KVER=$(uname -r)
UDCS=1
MODS=
MODE=run
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    dklab.udcs=*) UDCS="${arg#dklab.udcs=}" ;;
    dklab.modules=*) MODS="${arg#dklab.modules=}" ;;
    dklab.mode=*) MODE="${arg#dklab.mode=}" ;;
  esac
done
fail() { echo "@@dklab:fail $*"; poweroff -f; }
for m in $(echo "$MODS" | tr , ' '); do
  if [ "$m" = dummy_hcd ]; then
    modprobe dummy_hcd num="$UDCS" || echo "@@dklab:warn modprobe $m failed"
  else
    modprobe "$m" || echo "@@dklab:warn modprobe $m failed"
  fi
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host \
  || fail "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /root \
  || fail "cannot mount the overlay over the host root"
mount -t proc proc /root/proc
mount -t sysfs sysfs /root/sys
mount -t devtmpfs devtmpfs /root/dev
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts devpts /root/dev/pts
mount -t tmpfs tmpfs /root/dev/shm
mount -t configfs configfs /root/sys/kernel/config
mount -t debugfs debugfs /root/sys/kernel/debug
mount -t tmpfs -o mode=0755 tmpfs /root/run
mkdir -p /root/run/dklab /root/lib/modules/$KVER
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 dklab /root/run/dklab \
  || fail "cannot mount the results share (9p tag dklab)"
mount -o bind /lib/modules/$KVER /root/lib/modules/$KVER
ip link set lo up 2>/dev/null
hostname dklab
echo "@@dklab:ready $(cut -d' ' -f1 /proc/uptime)"
if [ "$MODE" = shell ]; then
  setsid cttyhack chroot /root /bin/sh /run/dklab/job.sh
else
  stty -onlcr 2>/dev/null
  chroot /root /bin/sh /run/dklab/job.sh
fi
echo "@@dklab:done $?"
sync
poweroff -f
"""
