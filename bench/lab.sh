# Sourced by the end-to-end bench scripts: what they share to run real peers on this machine.
#
#   bench_need CMD PACKAGE   fail, saying what to install, when CMD is missing
#   bench_done               for an EXIT trap: removes $BENCH_DIR if this script made it
#   bench_hugepages [N]      at least N 2 MiB hugepages, hugetlbfs mounted (DPDK processes)
#   bench_bpffs              bpffs mounted (XDP programs)
#   ovs_start [dpdk]         a private Open vSwitch (userspace datapath) under $OVS_DIR;
#                            its ovs-vswitchd runs in network namespace $OVS_NETNS if set
#   ovs_stop                 stops it and removes $OVS_DIR
#   vsctl, appctl            ovs-vsctl and ovs-appctl against it, bounded by timeouts
#
# Everything a script makes lives under $BENCH_DIR: the caller's, or a fresh temporary
# directory that the script removes when it ends (bench_owned=1). Names of kernel objects
# carry the script's pid, so runs of other people on the same machine are never touched.
# Needs root.

bench_owned=0
if [ -z "${BENCH_DIR:-}" ]; then
  BENCH_DIR=$(mktemp -d /tmp/vswitch-bench.XXXXXX)
  bench_owned=1
fi
export BENCH_DIR
mkdir -p "$BENCH_DIR"

# For an EXIT trap: removes $BENCH_DIR if this script made it.
bench_done() { [ "$bench_owned" = 1 ] && rm -rf "$BENCH_DIR"; return 0; }

bench_need() { # CMD PACKAGE
  command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || {
    echo "$(basename "$0"): needs $1: apt-get install $2 (or bench/install-peers)" >&2
    exit 1
  }
}

bench_hugepages() { # [N]
  local want=${1:-1024}
  [ "$(cat /proc/sys/vm/nr_hugepages)" -ge "$want" ] || echo "$want" > /proc/sys/vm/nr_hugepages
  mount | grep -q hugetlbfs || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
}

# bpffs in the current mount namespace (`ip netns exec` remounts /sys: call it inside too).
bench_bpffs() { mount | grep -q 'type bpf' || mount -t bpf bpf /sys/fs/bpf; }

# The private Open vSwitch. Its files (database, sockets, logs, pid files) are in $OVS_DIR.
OVS_DIR=${OVS_DIR:-$BENCH_DIR/ovs}
export OVS_RUNDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_SYSCONFDIR=$OVS_DIR
export OVS_PKGDATADIR=/usr/share/openvswitch
OVS_BIN=/usr/lib/openvswitch-switch/ovs-vswitchd
OVS_DPDK_BIN=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk

# ovs-vsctl without --no-wait blocks for as long as ovs-vswitchd is down: always bounded.
vsctl() { timeout 20 ovs-vsctl --db="unix:$OVS_DIR/db.sock" "$@"; }

# ovs-appctl to ovs-vswitchd (the DPDK build names its socket ovs-vswitchd-dpdk.PID.ctl).
appctl() {
  local ctl
  ctl=$(ls "$OVS_DIR"/ovs-vswitchd*.ctl 2>/dev/null | head -1)
  timeout 10 ovs-appctl -t "$ctl" "$@"
}

ovs_start() { # [dpdk]
  bench_need ovsdb-server openvswitch-switch
  local bin=$OVS_BIN
  mkdir -p "$OVS_DIR"
  ovsdb-tool create "$OVS_DIR/conf.db" "$OVS_PKGDATADIR/vswitch.ovsschema"
  ovsdb-server "$OVS_DIR/conf.db" --remote=punix:"$OVS_DIR/db.sock" \
    --pidfile="$OVS_DIR/ovsdb-server.pid" --detach --log-file="$OVS_DIR/ovsdb-server.log"
  vsctl --no-wait init
  if [ "${1:-}" = dpdk ]; then
    bench_need "$OVS_DPDK_BIN" openvswitch-switch-dpdk
    bench_hugepages 1024
    # One PMD on CPU 1; its own EAL file prefix, so other DPDK processes are left alone.
    echo "ovs$$" > "$OVS_DIR/file-prefix"
    vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
      other_config:dpdk-socket-mem=512 other_config:pmd-cpu-mask=0x2 \
      other_config:dpdk-extra="--no-pci --file-prefix=ovs$$"
    bin=$OVS_DPDK_BIN
  fi
  ${OVS_NETNS:+ip netns exec "$OVS_NETNS"} "$bin" unix:"$OVS_DIR/db.sock" \
    --pidfile="$OVS_DIR/ovs-vswitchd.pid" --detach --log-file="$OVS_DIR/ovs-vswitchd.log" \
    --mlockall
}

ovs_stop() {
  local p prefix
  for p in ovs-vswitchd ovsdb-server; do
    [ -f "$OVS_DIR/$p.pid" ] && kill "$(cat "$OVS_DIR/$p.pid")" 2>/dev/null
  done
  sleep 1
  prefix=$(cat "$OVS_DIR/file-prefix" 2>/dev/null)
  [ -n "$prefix" ] && rm -f /dev/hugepages/"$prefix"*
  rm -rf "$OVS_DIR"
}
