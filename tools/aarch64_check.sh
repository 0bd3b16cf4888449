#!/usr/bin/env bash
# The agent proven on aarch64: its wheel, built from this checkout, is installed into an arm64
# Debian userland run under qemu-user-static, with onnxruntime's aarch64 wheel from PyPI, and
# `flopgap-agent bench` and `flopgap-agent doctor` run there.
#
# Why emulation and not a board: CI has no arm64 runner, and what breaks on a board first is
# packaging (a dependency without an aarch64 wheel, an import that assumes x86, a probe that
# crashes on an ARM /proc/cpuinfo), which emulation shows. Emulated timings mean nothing
# (qemu translates every instruction), so none is printed: the check is that install, import,
# measurement and the result document work on the board's architecture.
#
# Usage: tools/aarch64_check.sh [OUT_DIR]        (default results/aarch64; run as root)
#   OUT_DIR receives aarch64_check.log, result.json (the bench document), doctor.txt,
#   doctor.rc, board.txt (uname -m, python, onnxruntime inside the userland) and summary.json.
# Environment:
#   PYTHON                       host Python with the collector installed (builds the wheel and
#                                writes the zoo model); default python3
#   FLOPGAP_AARCH64_RELEASE      Debian release of the userland (default bookworm: Python 3.11)
#   FLOPGAP_AARCH64_MIRROR       Debian mirror (default http://deb.debian.org/debian)
#   FLOPGAP_AARCH64_CACHE        where the userland is kept between runs
#                                (default ${XDG_CACHE_HOME:-~/.cache}/flopgap)
#   FLOPGAP_AARCH64_MODEL        zoo model to measure (default mlp)
# Exit status: 0 every check passed; 1 a check failed (the log says which); 2 this machine
# cannot run the check (not root, no binfmt_misc): the reason is the last line on stderr.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/results/aarch64}" && cd "${1:-$REPO/results/aarch64}" && pwd)
PYTHON=${PYTHON:-python3}
RELEASE=${FLOPGAP_AARCH64_RELEASE:-bookworm}
MIRROR=${FLOPGAP_AARCH64_MIRROR:-http://deb.debian.org/debian}
CACHE=${FLOPGAP_AARCH64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flopgap}
MODEL=${FLOPGAP_AARCH64_MODEL:-mlp}
# The userland is rebuilt when this list changes: it is part of the cache key.
PACKAGES=python3,python3-venv,ca-certificates
ROOTFS=$CACHE/aarch64-rootfs-$RELEASE
DEBS=$CACHE/aarch64-debs-$RELEASE # the downloaded .debs: a rebuilt userland fetches nothing
WORK=/opt/flopgap-check # inside the userland: the wheel, the model, the venv
BOARD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CANNOT_RUN=2

LOG=$OUT/aarch64_check.log
: >"$LOG"
exec 3>&2 # the caller's stderr, for the one line that says why the check cannot run here
exec > >(tee -a "$LOG") 2>&1

say() { printf '[aarch64 %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
cannot_run() {
  say "cannot run here: $1"
  say "hint: $2"
  echo "aarch64 check: cannot run here: $1 ($2)" >&3
  exit $CANNOT_RUN
}
fail() { say "FAILED: $1"; exit 1; }

require_root() {
  [ "$(id -u)" -eq 0 ] || cannot_run "debootstrap, chroot and mount need root" \
    "run it as root (sudo make aarch64), or in a root container"
}

# Debian's packages, installed when missing (as .ci/run installs chromium).
host_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]} from Debian"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
    >/dev/null) || cannot_run "apt-get could not install ${missing[*]}" "apt-get install ${missing[*]}"
}

# binfmt_misc lets the kernel hand every aarch64 executable to qemu: dpkg's maintainer scripts,
# the venv's python and the processes the agent starts all exec aarch64 binaries, which
# `qemu-aarch64-static -L ROOTFS prog` alone would not follow. Debian's entry has the F flag:
# the kernel opens qemu at registration, so the chroot needs no copy of it.
binfmt() {
  local dir=/proc/sys/fs/binfmt_misc
  [ -e $dir/register ] || mount -t binfmt_misc binfmt_misc $dir 2>/dev/null \
    || cannot_run "binfmt_misc is not mounted and cannot be" "mount -t binfmt_misc binfmt_misc $dir"
  [ -e $dir/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf >$dir/register 2>/dev/null \
    || cannot_run "cannot register qemu-aarch64 with binfmt_misc" \
      "update-binfmts --enable qemu-aarch64 (package binfmt-support)"
  grep -q enabled $dir/qemu-aarch64 || cannot_run "binfmt qemu-aarch64 is disabled" \
    "echo 1 > $dir/qemu-aarch64"
}

# debootstrap --foreign unpacks on the host; the second stage (dpkg configuring every package)
# runs under emulation. Built beside the cache and renamed, so a killed run leaves no
# half-made userland that a later run would trust.
make_rootfs() {
  local key="$RELEASE $PACKAGES"
  if [ -f "$ROOTFS/.flopgap-rootfs" ] && [ "$(cat "$ROOTFS/.flopgap-rootfs")" = "$key" ]; then
    say "cached arm64 userland: $ROOTFS ($key)"
    return
  fi
  local partial=$ROOTFS.partial
  rm -rf "$partial" "$ROOTFS"
  say "debootstrap --arch=arm64 --foreign $RELEASE (first stage, on the host)"
  mkdir -p "$DEBS"
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$PACKAGES" \
    --cache-dir="$DEBS" "$RELEASE" "$partial" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log"; fail "debootstrap first stage"; }
  say "debootstrap --second-stage under qemu (the slow part: minutes)"
  chroot "$partial" /debootstrap/debootstrap --second-stage >>"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log"; fail "debootstrap second stage"; }
  echo "$key" >"$partial/.flopgap-rootfs"
  mv "$partial" "$ROOTFS"
}

MOUNTED=()
unmount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount "${MOUNTED[i]}" || true; done
  MOUNTED=()
}
# psutil needs /proc (the host's, here). Not /sys: onnxruntime's cpuinfo (its ARM path) reads
# the CPU lists there, then parses the host's x86 /proc/cpuinfo as an ARM one and segfaults in
# `import onnxruntime` (qemu 7.2 passes the host's file through). A board has its own ARM files;
# without /sys here, the sysfs probes (cpufreq, thermal, power) find nothing and say so.
mount_kernel_fs() {
  trap unmount_all EXIT
  mount -t proc proc "$ROOTFS/proc" && MOUNTED+=("$ROOTFS/proc")
  mount --bind /dev "$ROOTFS/dev" && MOUNTED+=("$ROOTFS/dev")
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
}

# A clean environment: nothing of the host's pip configuration (find-links, indexes) leaks in;
# the host's CA bundle does, for networks whose HTTPS goes through an intercepting proxy.
on_board() {
  local env=(PATH=$BOARD_PATH HOME=/root LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1
    PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-120}" PIP_CERT=$WORK/host-ca.crt
    FLOPGAP_DEVICE_LOCK=$WORK/device.lock)
  local name
  for name in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    [ -n "${!name:-}" ] && env+=("$name=${!name}")
  done
  env -i "${env[@]}" chroot "$ROOTFS" "$@"
}

# The wheel from a copy of the checkout, so no build/ folder is left in the repo (as
# tests/test_wheel_install.py builds it); the model is written on the host, which has onnx.
stage_inputs() {
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/source"
  cp -r "$REPO/agent" "$REPO/collector" "$REPO/shared" "$REPO/pyproject.toml" "$REPO/README.md" \
    "$tmp/source/"
  find "$tmp/source" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
  say "building the agent's wheel with $PYTHON"
  "$PYTHON" -m pip wheel --no-deps -q -w "$tmp/wheels" "$tmp/source" || fail "pip wheel"
  rm -rf "${ROOTFS:?}$WORK"
  mkdir -p "$ROOTFS$WORK"
  cp "$tmp"/wheels/flopgap-*.whl "$ROOTFS$WORK/"
  cp "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$ROOTFS$WORK/host-ca.crt"
  PYTHONPATH=$REPO "$PYTHON" -c 'import sys; from pathlib import Path
from collector.zoo import write_zoo
write_zoo(Path(sys.argv[1]), names=[sys.argv[2]])' "$ROOTFS$WORK" "$MODEL" || fail "write_zoo"
  rm -rf "$tmp"
}

# A fresh venv every run (the install is what is proven); pip's cache inside the userland
# makes a second run download nothing. --only-binary: a dependency without an aarch64 wheel
# is the failure to find, not something to compile under emulation for half an hour.
install_agent() {
  say "python3 -m venv + pip install the agent wheel (onnxruntime's aarch64 wheel from PyPI)"
  on_board python3 -m venv "$WORK/venv" || fail "python3 -m venv in the userland"
  on_board sh -c "$WORK/venv/bin/pip install -q --only-binary=:all: $WORK/flopgap-*.whl" \
    || fail "pip install the agent wheel in the userland"
  on_board "$WORK/venv/bin/python" -c 'import platform, sys, onnxruntime, agent
print("machine", platform.machine())
print("python", sys.version.split()[0])
print("onnxruntime", onnxruntime.__version__, " ".join(onnxruntime.get_available_providers()))' \
    >"$OUT/board.txt" || fail "import onnxruntime and agent in the userland"
  sed 's/^/  /' "$OUT/board.txt"
}

run_agent() {
  say "flopgap-agent bench $MODEL.onnx (a few iterations; emulated timings are not reported)"
  on_board "$WORK/venv/bin/flopgap-agent" bench "$WORK/$MODEL.onnx" --json --min-seconds 0 \
    --min-iterations 5 --warmup 1 --warmup-seconds 0 --max-seconds 120 \
    >"$OUT/result.json" || fail "flopgap-agent bench exited $?"
  say "flopgap-agent doctor"
  local rc=0
  on_board "$WORK/venv/bin/flopgap-agent" doctor >"$OUT/doctor.txt" || rc=$?
  echo "$rc" >"$OUT/doctor.rc"
  sed 's/^/  /' "$OUT/doctor.txt"
  [ "$rc" -eq 0 ] || fail "flopgap-agent doctor exited $rc"
}

# What the document must say, without a single timing value in the output.
check_document() {
  PYTHONPATH=$REPO "$PYTHON" -m tools.aarch64_document "$OUT/result.json" "$OUT/doctor.rc" \
    "$OUT/summary.json" || fail "the result document"
}

require_root
mkdir -p "$CACHE"
exec 9>"$CACHE/aarch64.lock"
flock -w 3600 9 || fail "another aarch64 check held $CACHE/aarch64.lock for an hour"
host_tools
binfmt
make_rootfs
stage_inputs
mount_kernel_fs
install_agent
run_agent
check_document
say "aarch64 check passed"
