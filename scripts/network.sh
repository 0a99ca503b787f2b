#!/usr/bin/env bash
# MIP's real Hyperledger Fabric network (2.5 LTS or 3.x) on this machine (no Docker), modelled on
# fabric-samples' test-network-nano-bash: one etcdraft orderer (or three, MIP_ORDERERS=3) and
# one peer per org (HospitalMSP, SchoolMSP, PharmacyMSP) as background processes on 127.0.0.1,
# the `mip` chaincode served as a service (python -m chaincode) by each org. `deploy` can add
# further chaincodes by name, on the Python shim or on Fabric's Node runtime. See docs/deploy.md.
#
#   scripts/network.sh up      crypto material, channel genesis block, start orderer + peers,
#                              join them to mipchannel
#   scripts/network.sh deploy  package (ccaas), install, start chaincode servers, approve,
#                              commit, wait until the Gateway endorses, write connection.json
#   scripts/network.sh status  processes, channel height, committed chaincode
#   scripts/network.sh down    stop every process this script started (and check none is left)
#   scripts/network.sh clean   down, then remove all state
#
# Binaries come from $FABRIC_BIN (peer, orderer, configtxgen, osnadmin) or PATH; the ccaas
# builder from $FABRIC_BUILDERS or <dir of peer>/../builders/ccaas. Fabric 2.5 and 3.x both
# work with the same config files: `up` asks `peer version` and `orderer version` which release
# they are (both must have the same major version), records it in the state dir (a state dir
# keeps its major version), and gives 3.x peers core.yaml plus the TimeWindowCheck auth filter
# (network/fabric/version.py; a 2.5 peer refuses that filter).
#
# Settings (environment):
#   MIP_FABRIC_DIR           state dir (default <repo>/var/fabric): crypto, ledgers, logs, pids
#   MIP_FABRIC_PORT_OFFSET   added to every port below (default 0)
#       orderer 7050, orderer admin 7053, orderer operations 9443,
#       (MIP_ORDERERS=3: orderer1 7054 / admin 7055 / ops 9447, orderer2 7056 / 7057 / 9448)
#       peers 7051 / 8051 / 9051 (chaincode listener +1), peer operations 9444 / 9445 / 9446,
#       chaincode servers 7059 / 8059 / 9059 (MIP_CHAINCODE_PORT / +1000 / +2000)
#   MIP_ORDERERS             1 (default) or 3: etcdraft consenters; fixed when `up` first runs
#   MIP_FABRIC_BATCH_TIMEOUT block cut timeout (default 20ms), MIP_FABRIC_BATCH_SIZE (100)
#   MIP_CHAINCODE_CONTRACT   module:Class[,...] served by the chaincode servers (default: the
#                            MIP contracts, chaincode.protocol.deployment.CONTRACT_SPEC; the asset tests use
#                            chaincode.contracts.asset:AssetContract)
#   MIP_CHAINCODE_POLICY     chaincode endorsement policy (default: MIP's majority,
#                            chaincode/protocol/deployment.py's CHAINCODE_POLICY;
#                            "channel": the channel's Endorsement policy, MAJORITY)
#   MIP_CHAINCODE_SEQUENCE   definition sequence to approve/commit (default: 1, or keep the
#                            committed one); raise it to change a committed definition
#   MIP_CHAINCODE_TLS        true (default): mutual TLS between peers and chaincode servers
#   MIP_CHAINCODE_NAME       chaincode (definition) name deploy works on (default mip); another
#                            name deploys a second chaincode beside mip: own package label,
#                            servers (cc-NAME-ORG), <state>/connection.NAME.json
#   MIP_CHAINCODE_PORT       Hospital's chaincode server port (School +1000, Pharmacy +2000);
#                            default 7059 for mip, required for any other name
#   MIP_CHAINCODE_RUNTIME    python (default: python -m chaincode) or node: Fabric's Node
#                            runtime (fabric-shim server) serving scripts/node_chaincode
#                            (MIP_NODE_CHAINCODE_DIR; its npm packages are installed when absent,
#                            by scripts/npm_deps.sh; node: MIP_NODE)
#   MIP_FABRIC_READY_TIMEOUT seconds deploy waits for the Gateway to endorse (default 120)
#   MIP_FABRIC_LOG_SPEC      FABRIC_LOGGING_SPEC of orderer and peers (default info)
#   MIP_PYTHON               python with MIP installed (default <repo>/.venv/bin/python)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${MIP_FABRIC_DIR:-$REPO/var/fabric}"
CFG_DIR="$REPO/network/fabric"
COLLECTIONS="$CFG_DIR/collections_config.json"
HOST=127.0.0.1
CHANNEL=mipchannel
CC_NAME="${MIP_CHAINCODE_NAME:-mip}"
CC_VERSION=1
CC_RUNTIME="${MIP_CHAINCODE_RUNTIME:-python}"
NODE_CC_DIR="${MIP_NODE_CHAINCODE_DIR:-$REPO/scripts/node_chaincode}"
MARKER=.mip-fabric-state
# chaincode/protocol/deployment.py's CHAINCODE_POLICY (tests/chaincode/mip check they agree).
MIP_POLICY="OutOf(2, 'HospitalMSP.peer', 'SchoolMSP.peer', 'PharmacyMSP.peer')"

OFF="${MIP_FABRIC_PORT_OFFSET:-0}"
[[ "$OFF" =~ ^[0-9]+$ ]] || { echo "MIP_FABRIC_PORT_OFFSET must be a number" >&2; exit 2; }
# Fabric's chaincode name rule (core/chaincode/lifecycle: ^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$).
[[ "$CC_NAME" =~ ^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$ ]] ||
  { echo "MIP_CHAINCODE_NAME: invalid chaincode name '$CC_NAME'" >&2; exit 2; }
[[ "$CC_RUNTIME" == python || "$CC_RUNTIME" == node ]] ||
  { echo "MIP_CHAINCODE_RUNTIME must be python or node, not '$CC_RUNTIME'" >&2; exit 2; }
# Orderer nodes: name, port, admin port, operations port. Node 0 keeps the single-orderer
# names and ports; 1 and 2 sit in the gaps of the same 100-port block, so networks shifted by
# MIP_FABRIC_PORT_OFFSET in steps of 100 (tests, benches) never collide.
ORDERER_NAMES=(orderer orderer1 orderer2)
ORDERER_PORTS=($((7050 + OFF)) $((7054 + OFF)) $((7056 + OFF)))
ORDERER_ADMIN_PORTS=($((7053 + OFF)) $((7055 + OFF)) $((7057 + OFF)))
ORDERER_OPS_PORTS=($((9443 + OFF)) $((9447 + OFF)) $((9448 + OFF)))
ORDERER_PORT=${ORDERER_PORTS[0]}

ORGS=(HospitalMSP SchoolMSP PharmacyMSP)
NAMES=(hospital school pharmacy)
DOMAINS=(hospital.mip.local school.mip.local pharmacy.mip.local)
PEER_PORTS=($((7051 + OFF)) $((8051 + OFF)) $((9051 + OFF)))
PEER_OPS_PORTS=($((9444 + OFF)) $((9445 + OFF)) $((9446 + OFF)))
if [[ -n "${MIP_CHAINCODE_PORT:-}" ]]; then
  [[ "$MIP_CHAINCODE_PORT" =~ ^[0-9]+$ ]] || { echo "MIP_CHAINCODE_PORT must be a number" >&2; exit 2; }
  CC_BASE="$MIP_CHAINCODE_PORT"
elif [[ "$CC_NAME" == mip ]]; then
  CC_BASE=7059
else
  CC_BASE=""  # deploy refuses: a second chaincode needs ports of its own
fi
CC_PORTS=()
[[ -n "$CC_BASE" ]] && CC_PORTS=($((CC_BASE + OFF)) $((CC_BASE + 1000 + OFF)) $((CC_BASE + 2000 + OFF)))

ORG_CRYPTO="$STATE/organizations"
ORDERER_DIR="$ORG_CRYPTO/ordererOrganizations/orderer.mip.local"
ORDERER_CA="$ORDERER_DIR/tlsca/tlsca.orderer.mip.local-cert.pem"
ORDERER_ADMIN_TLS="$ORDERER_DIR/users/Admin@orderer.mip.local/tls"
BLOCK="$STATE/channel-artifacts/$CHANNEL.block"
PEER_CFG="$STATE/config/peer"  # core.yaml for the peers of this release (see fabric_release)
PIDS="$STATE/pids"
LOGS="$STATE/logs"

PY="${MIP_PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3 || true)"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "network.sh: $*" >&2; exit 1; }

# The orderer count is part of the genesis block: once `up` has made it, the state dir's
# record wins, and a conflicting MIP_ORDERERS is an error rather than a silent mismatch.
# (`down`, `status` and `clean` simply follow the record.)
N_ORDERERS="${MIP_ORDERERS:-1}" ORDERERS_CONFLICT=""
if [[ -f "$STATE/orderers" ]]; then
  recorded="$(cat "$STATE/orderers")"
  [[ -z "${MIP_ORDERERS:-}" || "$MIP_ORDERERS" == "$recorded" ]] ||
    ORDERERS_CONFLICT="$STATE was set up with $recorded orderer(s), not MIP_ORDERERS=$MIP_ORDERERS (clean it first)"
  N_ORDERERS="$recorded"
fi
[[ "$N_ORDERERS" == 1 || "$N_ORDERERS" == 3 ]] || die "MIP_ORDERERS must be 1 or 3, not '$N_ORDERERS'"
ORDERER_IDX=(0)
((N_ORDERERS == 3)) && ORDERER_IDX=(0 1 2)

orderer_node() { echo "$ORDERER_DIR/orderers/orderer$1.orderer.mip.local"; }

# Chaincode server process names and per-org state files of the chaincode deploy works on:
# mip keeps the names it always had, any other chaincode gets its own.
cc_proc() { if [[ "$CC_NAME" == mip ]]; then echo "cc-${NAMES[$1]}"; else echo "cc-$CC_NAME-${NAMES[$1]}"; fi; }
cc_running_file() {
  if [[ "$CC_NAME" == mip ]]; then echo "$STATE/chaincode/${DOMAINS[$1]}/running_id"
  else echo "$STATE/chaincode/${DOMAINS[$1]}/$CC_NAME.running_id"; fi
}

# ------------------------------------------------------------------------------ binaries

PEER="" ORDERER="" CONFIGTXGEN="" OSNADMIN="" BUILDERS=""

find_bin() {
  if [[ -n "${FABRIC_BIN:-}" ]]; then
    if [[ -x "$FABRIC_BIN/$1" ]]; then echo "$FABRIC_BIN/$1"; fi
  else
    command -v "$1" || true
  fi
}

# require_bins NAME...: resolve Fabric binaries (and the ccaas builder); one message for all
# that are missing.
require_bins() {
  local missing=() name path
  for name in "$@"; do
    path="$(find_bin "$name")"
    if [[ -z "$path" ]]; then missing+=("$name"); continue; fi
    case "$name" in
      peer) PEER="$path" ;; orderer) ORDERER="$path" ;;
      configtxgen) CONFIGTXGEN="$path" ;; osnadmin) OSNADMIN="$path" ;;
    esac
  done
  if [[ -n "$PEER" ]]; then
    BUILDERS="${FABRIC_BUILDERS:-$(dirname "$PEER")/../builders/ccaas}"
    for name in detect build release; do
      [[ -x "$BUILDERS/bin/$name" ]] || missing+=("ccaas builder bin/$name (in $BUILDERS)")
    done
    BUILDERS="$(cd "$BUILDERS" 2>/dev/null && pwd || echo "$BUILDERS")"
  fi
  if ((${#missing[@]})); then
    local where="PATH"
    [[ -n "${FABRIC_BIN:-}" ]] && where="\$FABRIC_BIN ($FABRIC_BIN)"
    die "missing Fabric binaries in $where: ${missing[*]} (set FABRIC_BIN to the folder" \
        "holding peer, orderer, configtxgen, osnadmin; FABRIC_BUILDERS to the ccaas builder)"
  fi
  [[ -n "$PY" ]] || die "no python found (set MIP_PYTHON or create $REPO/.venv)"
}

# fabric_release: the peer's and the orderer's release (same major version), checked against
# the one the state dir was set up with; writes the peers' core.yaml for it into $PEER_CFG.
FABRIC_VERSION=""
fabric_release() {
  local peer_v orderer_v recorded
  peer_v="$("$PEER" version 2>&1 |
    (cd "$REPO" && "$PY" -m network.fabric peer-config "$CFG_DIR/core.yaml" "$PEER_CFG") 2>&1)" ||
    die "cannot use $PEER: $peer_v"
  orderer_v="$("$ORDERER" version 2>&1 | sed -n 's/^ *Version: *v\{0,1\}//p' | head -n 1)"
  [[ "${orderer_v%%.*}" == "${peer_v%%.*}" ]] ||
    die "peer is Fabric $peer_v but orderer is Fabric ${orderer_v:-?} ($ORDERER): use one release"
  if [[ -f "$STATE/fabric-version" ]]; then
    recorded="$(cat "$STATE/fabric-version")"
    [[ "${recorded%%.*}" == "${peer_v%%.*}" ]] ||
      die "$STATE was set up with Fabric $recorded, not $peer_v (clean it first)"
  fi
  echo "$peer_v" >"$STATE/fabric-version"
  FABRIC_VERSION="$peer_v"
}

# ------------------------------------------------------------------------------ processes

# Start time (clock ticks since boot, /proc/PID/stat field 22): with the pid it identifies
# a process even after its pid is reused.
start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# pid_alive NAME: true if the process recorded for NAME is still the one we started.
pid_alive() {
  local file="$PIDS/$1.pid" pid start
  [[ -f "$file" ]] || return 1
  read -r pid start <"$file" || return 1
  [[ -n "$pid" && "$(start_time "$pid")" == "$start" ]]
}

# start_bg NAME CMD...: run CMD detached in its own session (so `down` can stop its whole
# process group), output to logs/NAME.log, pid + start time to pids/NAME.pid.
start_bg() {
  local name="$1"; shift
  mkdir -p "$PIDS" "$LOGS"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$!
  local start=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    start="$(start_time "$pid")"; [[ -n "$start" ]] && break; sleep 0.05
  done
  [[ -n "$start" ]] || die "$name exited at once; see $LOGS/$name.log"
  echo "$pid $start" >"$PIDS/$name.pid"
}

# require_free_ports NAME PORT...: fail before starting NAME if something already listens.
require_free_ports() {
  local name="$1" port; shift
  for port in "$@"; do
    if (: <>"/dev/tcp/$HOST/$port") 2>/dev/null; then
      die "cannot start $name: $HOST:$port is already in use (another network or a devnet?" \
          "shift all ports with MIP_FABRIC_PORT_OFFSET)"
    fi
  done
}

# wait_healthz NAME PORT: until the node's operations endpoint answers /healthz OK.
wait_healthz() {
  local name="$1" port="$2" i
  for ((i = 0; i < 300; i++)); do
    if ! pid_alive "$name"; then
      tail -n 30 "$LOGS/$name.log" >&2 || true
      die "$name died during start-up (log: $LOGS/$name.log)"
    fi
    if "$PY" -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)' "http://$HOST:$port/healthz" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  die "$name not healthy after 60s (log: $LOGS/$name.log)"
}

# ------------------------------------------------------------------------------ peer CLI

# as_admin I CMD...: run the peer CLI as org I's Admin against org I's peer.
as_admin() {
  local i="$1"; shift
  local d="${DOMAINS[$i]}"
  local org="$ORG_CRYPTO/peerOrganizations/$d"
  env FABRIC_CFG_PATH="$CFG_DIR" FABRIC_LOGGING_SPEC=warning \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_LOCALMSPID="${ORGS[$i]}" \
    CORE_PEER_MSPCONFIGPATH="$org/users/Admin@$d/msp" \
    CORE_PEER_ADDRESS="$HOST:${PEER_PORTS[$i]}" \
    CORE_PEER_TLS_ROOTCERT_FILE="$org/tlsca/tlsca.$d-cert.pem" \
    "$PEER" "$@"
}

# osnadmin_ K ARGS...: the channel participation API of orderer node K, as the OrdererMSP Admin.
osnadmin_() {
  local k="$1"; shift
  "$OSNADMIN" "$@" -o "$HOST:${ORDERER_ADMIN_PORTS[$k]}" --ca-file "$ORDERER_CA" \
    --client-cert "$ORDERER_ADMIN_TLS/client.crt" --client-key "$ORDERER_ADMIN_TLS/client.key"
}

# ------------------------------------------------------------------------------ up

# start_orderer K: orderer node K (0, 1, 2). Raft traffic between nodes reuses the general
# listener and TLS pair (as fabric-samples' test-network-nano-bash does): the consenters in the
# channel config name each node's server certificate, used both ways for mutual TLS.
start_orderer() {
  local k="$1" name="${ORDERER_NAMES[$1]}" node data
  node="$(orderer_node "$k")"
  data="$STATE/data/$name"
  pid_alive "$name" && { log "$name already running"; return; }
  require_free_ports "$name" "${ORDERER_PORTS[$k]}" "${ORDERER_ADMIN_PORTS[$k]}" "${ORDERER_OPS_PORTS[$k]}"
  log "starting $name on $HOST:${ORDERER_PORTS[$k]} (admin ${ORDERER_ADMIN_PORTS[$k]})"
  mkdir -p "$data"
  start_bg "$name" env FABRIC_CFG_PATH="$CFG_DIR" \
    FABRIC_LOGGING_SPEC="${MIP_FABRIC_LOG_SPEC:-info}" \
    ORDERER_GENERAL_LISTENADDRESS="$HOST" \
    ORDERER_GENERAL_LISTENPORT="${ORDERER_PORTS[$k]}" \
    ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
    ORDERER_GENERAL_LOCALMSPDIR="$node/msp" \
    ORDERER_GENERAL_TLS_PRIVATEKEY="$node/tls/server.key" \
    ORDERER_GENERAL_TLS_CERTIFICATE="$node/tls/server.crt" \
    ORDERER_GENERAL_TLS_ROOTCAS="$ORDERER_CA" \
    ORDERER_FILELEDGER_LOCATION="$data" \
    ORDERER_CONSENSUS_WALDIR="$data/etcdraft/wal" \
    ORDERER_CONSENSUS_SNAPDIR="$data/etcdraft/snapshot" \
    ORDERER_OPERATIONS_LISTENADDRESS="$HOST:${ORDERER_OPS_PORTS[$k]}" \
    ORDERER_METRICS_PROVIDER=prometheus \
    ORDERER_ADMIN_LISTENADDRESS="$HOST:${ORDERER_ADMIN_PORTS[$k]}" \
    ORDERER_ADMIN_TLS_CERTIFICATE="$node/tls/server.crt" \
    ORDERER_ADMIN_TLS_PRIVATEKEY="$node/tls/server.key" \
    ORDERER_ADMIN_TLS_CLIENTROOTCAS="$ORDERER_CA" \
    "$ORDERER"
}

start_peer() {
  local i="$1" name="peer-${NAMES[$i]}"
  local d="${DOMAINS[$i]}" port="${PEER_PORTS[$i]}"
  local node="$ORG_CRYPTO/peerOrganizations/$d/peers/peer0.$d"
  pid_alive "$name" && { log "$name already running"; return; }
  require_free_ports "$name" "$port" "$((port + 1))" "${PEER_OPS_PORTS[$i]}"
  log "starting peer0.$d (${ORGS[$i]}) on $HOST:$port"
  mkdir -p "$STATE/data/peer0.$d"
  start_bg "$name" env FABRIC_CFG_PATH="$PEER_CFG" \
    FABRIC_LOGGING_SPEC="${MIP_FABRIC_LOG_SPEC:-info}" \
    CORE_PEER_ID="peer0.$d" \
    CORE_PEER_LOCALMSPID="${ORGS[$i]}" \
    CORE_PEER_MSPCONFIGPATH="$node/msp" \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_TLS_CERT_FILE="$node/tls/server.crt" \
    CORE_PEER_TLS_KEY_FILE="$node/tls/server.key" \
    CORE_PEER_TLS_ROOTCERT_FILE="$node/tls/ca.crt" \
    CORE_PEER_LISTENADDRESS="$HOST:$port" \
    CORE_PEER_ADDRESS="$HOST:$port" \
    CORE_PEER_CHAINCODELISTENADDRESS="$HOST:$((port + 1))" \
    CORE_PEER_CHAINCODEADDRESS="$HOST:$((port + 1))" \
    CORE_PEER_GOSSIP_BOOTSTRAP="$HOST:$port" \
    CORE_PEER_GOSSIP_EXTERNALENDPOINT="$HOST:$port" \
    CORE_PEER_FILESYSTEMPATH="$STATE/data/peer0.$d" \
    CORE_LEDGER_SNAPSHOTS_ROOTDIR="$STATE/data/peer0.$d/snapshots" \
    CORE_OPERATIONS_LISTENADDRESS="$HOST:${PEER_OPS_PORTS[$i]}" \
    CORE_VM_ENDPOINT="" \
    CORE_CHAINCODE_EXTERNALBUILDERS="[{name: ccaas_builder, path: $BUILDERS, propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]}]" \
    "$PEER" node start
}

cmd_up() {
  [[ -z "$ORDERERS_CONFLICT" ]] || die "$ORDERERS_CONFLICT"
  require_bins peer orderer configtxgen osnadmin
  local t0=$SECONDS i k
  mkdir -p "$STATE" "$PIDS" "$LOGS"
  touch "$STATE/$MARKER"
  fabric_release
  log "state in $STATE ($N_ORDERERS orderer(s), Fabric $FABRIC_VERSION)"
  log "crypto material (cryptogen layout, network.devnet.pki)"
  (cd "$REPO" && "$PY" -m network.fabric crypto "$STATE" --orderers "$N_ORDERERS")
  if [[ ! -f "$BLOCK" ]]; then
    local profile=MIPChannel
    ((N_ORDERERS == 3)) && profile=MIPChannelRaft3
    log "channel genesis block for $CHANNEL (profile $profile, batch timeout ${MIP_FABRIC_BATCH_TIMEOUT:-20ms})"
    (cd "$REPO" && "$PY" -m network.fabric render "$CFG_DIR/configtx.yaml" \
      "$STATE/config/configtx.yaml" CRYPTO="$ORG_CRYPTO" \
      ORDERER_HOST="$HOST" ORDERER_PORT="${ORDERER_PORTS[0]}" \
      ORDERER1_PORT="${ORDERER_PORTS[1]}" ORDERER2_PORT="${ORDERER_PORTS[2]}" \
      HOSPITAL_HOST="$HOST" HOSPITAL_PORT="${PEER_PORTS[0]}" \
      SCHOOL_HOST="$HOST" SCHOOL_PORT="${PEER_PORTS[1]}" \
      PHARMACY_HOST="$HOST" PHARMACY_PORT="${PEER_PORTS[2]}" \
      BATCH_TIMEOUT="${MIP_FABRIC_BATCH_TIMEOUT:-20ms}" BATCH_SIZE="${MIP_FABRIC_BATCH_SIZE:-100}")
    mkdir -p "$(dirname "$BLOCK")"
    FABRIC_LOGGING_SPEC=warning "$CONFIGTXGEN" -configPath "$STATE/config" -profile "$profile" \
      -channelID "$CHANNEL" -outputBlock "$BLOCK" >"$LOGS/configtxgen.log" 2>&1 ||
      { cat "$LOGS/configtxgen.log" >&2; die "configtxgen failed"; }
    echo "$N_ORDERERS" >"$STATE/orderers"
  fi
  for k in "${ORDERER_IDX[@]}"; do start_orderer "$k"; done
  for i in 0 1 2; do start_peer "$i"; done
  for k in "${ORDERER_IDX[@]}"; do wait_healthz "${ORDERER_NAMES[$k]}" "${ORDERER_OPS_PORTS[$k]}"; done
  for i in 0 1 2; do wait_healthz "peer-${NAMES[$i]}" "${PEER_OPS_PORTS[$i]}"; done
  for k in "${ORDERER_IDX[@]}"; do
    if osnadmin_ "$k" channel list 2>/dev/null | grep -q "\"$CHANNEL\""; then
      log "${ORDERER_NAMES[$k]} already serves $CHANNEL"
    else
      log "${ORDERER_NAMES[$k]} joins $CHANNEL (osnadmin channel join)"
      osnadmin_ "$k" channel join --channelID "$CHANNEL" --config-block "$BLOCK" >"$LOGS/osnadmin.log" 2>&1 ||
        { cat "$LOGS/osnadmin.log" >&2; die "osnadmin channel join failed on ${ORDERER_NAMES[$k]}"; }
    fi
  done
  for i in 0 1 2; do
    if as_admin "$i" channel list 2>/dev/null | grep -qx "$CHANNEL"; then
      log "peer0.${DOMAINS[$i]} already joined $CHANNEL"
    else
      log "peer0.${DOMAINS[$i]} joins $CHANNEL"
      as_admin "$i" channel join -b "$BLOCK" >>"$LOGS/admin.log" 2>&1 ||
        { tail -n 20 "$LOGS/admin.log" >&2; die "peer channel join failed for ${ORGS[$i]}"; }
    fi
  done
  log "network up in $((SECONDS - t0))s (anchor peers are in the genesis block)"
}

# ------------------------------------------------------------------------------ deploy

require_running() {
  local n k live=0
  for n in peer-hospital peer-school peer-pharmacy; do
    pid_alive "$n" || die "$n is not running: run scripts/network.sh up first"
  done
  for k in "${ORDERER_IDX[@]}"; do pid_alive "${ORDERER_NAMES[$k]}" && live=$((live + 1)); done
  # Raft orders only with a majority of its consenters alive.
  ((live * 2 > ${#ORDERER_IDX[@]})) ||
    die "only $live of ${#ORDERER_IDX[@]} orderers running: run scripts/network.sh up first"
}

# live_orderer: host:port of the first orderer node still running (admin commands' -o).
live_orderer() {
  local k
  for k in "${ORDERER_IDX[@]}"; do
    pid_alive "${ORDERER_NAMES[$k]}" && { echo "$HOST:${ORDERER_PORTS[$k]}"; return; }
  done
  echo "$HOST:${ORDERER_PORTS[0]}"
}

start_chaincode() {
  local i="$1" id="$2" name d="${DOMAINS[$i]}" running
  name="$(cc_proc "$i")"
  running="$(cc_running_file "$i")"
  local tls="$STATE/chaincode/$d/tls" addr="$HOST:${CC_PORTS[$i]}"
  local client_ca="$ORG_CRYPTO/peerOrganizations/$d/tlsca/tlsca.$d-cert.pem"
  if pid_alive "$name"; then
    # The package holds only the server's address: the same id may serve another contract.
    if [[ "$(cat "$running" 2>/dev/null)" == "$id $CONTRACT" ]]; then
      log "$name already serves $id"; return
    fi
    stop_one "$name"
  fi
  require_free_ports "$name" "${CC_PORTS[$i]}"
  log "starting $CC_RUNTIME chaincode server $name for ${ORGS[$i]} on $addr"
  if [[ "$CC_RUNTIME" == node ]]; then
    # Fabric's Node runtime in chaincode-as-a-service mode (fabric-shim's serverCommand.js).
    local args=(server --chaincode-address "$addr" --chaincode-id "$id" --module-path "$NODE_CC_DIR")
    if [[ "${MIP_CHAINCODE_TLS:-true}" == "true" ]]; then
      args+=(--chaincode-tls-cert-file "$tls/server/server.crt"
        --chaincode-tls-key-file "$tls/server/server.key"
        --chaincode-tls-client-cacert-file "$client_ca")
    fi
    (cd "$NODE_CC_DIR" && start_bg "$name" "$NODE" "$NODE_CC_DIR/node_modules/fabric-shim/cli.js" "${args[@]}")
  else
    local envs=(CHAINCODE_SERVER_ADDRESS="$addr" CHAINCODE_ID="$id")
    if [[ "${MIP_CHAINCODE_TLS:-true}" == "true" ]]; then
      envs+=(CHAINCODE_TLS_DISABLED=false CHAINCODE_TLS_KEY="$tls/server/server.key"
        CHAINCODE_TLS_CERT="$tls/server/server.crt" CHAINCODE_CLIENT_CA_CERT="$client_ca")
    else
      envs+=(CHAINCODE_TLS_DISABLED=true)
    fi
    envs+=(CHAINCODE_CONTRACT="$CONTRACT")
    (cd "$REPO" && start_bg "$name" env "${envs[@]}" PYTHONPATH="$REPO" "$PY" -m chaincode)
  fi
  echo "$id $CONTRACT" >"$running"
}

committed_sequence() {
  as_admin 0 lifecycle chaincode querycommitted -C "$CHANNEL" -n "$CC_NAME" -O json 2>/dev/null |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["sequence"])' 2>/dev/null || true
}

# resolve_contract: CONTRACT and POLICY_ARGS from the settings (see the header).
CONTRACT="" POLICY_ARGS=() NODE=""
resolve_contract() {
  [[ ${#CC_PORTS[@]} -eq 3 ]] ||
    die "chaincode $CC_NAME needs ports of its own: set MIP_CHAINCODE_PORT (e.g. 7060; mip uses 7059)"
  CONTRACT="${MIP_CHAINCODE_CONTRACT:-}"
  if [[ "$CC_RUNTIME" == node ]]; then
    NODE="${MIP_NODE:-$(command -v node || true)}"
    [[ -n "$NODE" && -x "$NODE" ]] || die "MIP_CHAINCODE_RUNTIME=node needs node (on PATH or MIP_NODE)"
    # fabric-shim from the npm registry (npm ci against the folder's lockfile) when absent:
    # a fresh clone needs no manual step, and a failed install stops the deploy.
    "$REPO/scripts/npm_deps.sh" "$NODE_CC_DIR" fabric-shim/cli.js ||
      die "could not install $NODE_CC_DIR's npm dependencies (npm output above)"
    # What the servers run, as recorded for clients (the Node contract is the folder's index.js).
    CONTRACT="node:$NODE_CC_DIR"
  elif [[ -z "$CONTRACT" ]]; then
    CONTRACT="$(cd "$REPO" && "$PY" -c 'from chaincode.protocol.deployment import CONTRACT_SPEC; print(CONTRACT_SPEC)')" ||
      die "cannot read chaincode.protocol.deployment.CONTRACT_SPEC with $PY"
  fi
  local policy="${MIP_CHAINCODE_POLICY:-$MIP_POLICY}"
  if [[ "$policy" == "channel" ]]; then POLICY_ARGS=(); else POLICY_ARGS=(--signature-policy "$policy"); fi
}

cmd_deploy() {
  require_bins peer
  require_running
  resolve_contract
  local t0=$SECONDS i
  local label="${CC_NAME}_${CC_VERSION}" orderer
  orderer="$(live_orderer)"
  local ids=()
  for i in 0 1 2; do
    local d="${DOMAINS[$i]}" pkg="$STATE/chaincode/${DOMAINS[$i]}/$CC_NAME.tgz" id
    local tls_args=()
    if [[ "${MIP_CHAINCODE_TLS:-true}" == "true" ]]; then
      tls_args=(--state "$STATE" --tls-org "${ORGS[$i]}" --tls-host "$HOST" --tls-host localhost)
    fi
    id="$(cd "$REPO" && "$PY" -m network.fabric package "$pkg" --label "$label" \
      --address "$HOST:${CC_PORTS[$i]}" "${tls_args[@]}")"
    ids+=("$id")
    if as_admin "$i" lifecycle chaincode queryinstalled -O json 2>/dev/null | grep -q "\"$id\""; then
      log "${ORGS[$i]}: $id already installed"
    else
      log "${ORGS[$i]}: installing $id"
      as_admin "$i" lifecycle chaincode install "$pkg" >>"$LOGS/admin.log" 2>&1 ||
        { tail -n 20 "$LOGS/admin.log" >&2; die "install failed on peer0.$d"; }
    fi
    start_chaincode "$i" "$id"
  done

  local current sequence
  current="$(committed_sequence)"
  sequence="${MIP_CHAINCODE_SEQUENCE:-${current:-1}}"
  if [[ -n "$current" && "$sequence" -le "$current" ]]; then
    log "$CC_NAME already committed at sequence $current (raise MIP_CHAINCODE_SEQUENCE to change it)"
  else
    local common=(-o "$orderer" --tls --cafile "$ORDERER_CA" --channelID "$CHANNEL"
      --name "$CC_NAME" --version "$CC_VERSION" --sequence "$sequence"
      --collections-config "$COLLECTIONS" "${POLICY_ARGS[@]}")
    for i in 0 1 2; do
      log "${ORGS[$i]}: approving $CC_NAME sequence $sequence"
      as_admin "$i" lifecycle chaincode approveformyorg "${common[@]}" --package-id "${ids[$i]}" \
        >>"$LOGS/admin.log" 2>&1 || { tail -n 20 "$LOGS/admin.log" >&2; die "approve failed for ${ORGS[$i]}"; }
    done
    local peers=()
    for i in 0 1 2; do
      peers+=(--peerAddresses "$HOST:${PEER_PORTS[$i]}" --tlsRootCertFiles
        "$ORG_CRYPTO/peerOrganizations/${DOMAINS[$i]}/tlsca/tlsca.${DOMAINS[$i]}-cert.pem")
    done
    log "committing $CC_NAME sequence $sequence on $CHANNEL"
    as_admin 0 lifecycle chaincode commit "${common[@]}" "${peers[@]}" >>"$LOGS/admin.log" 2>&1 ||
      { tail -n 20 "$LOGS/admin.log" >&2; die "commit failed"; }
  fi

  local endpoints=() conn="connection.json" record="$STATE/chaincode/contract"
  if [[ "$CC_NAME" != mip ]]; then conn="connection.$CC_NAME.json" record="$STATE/chaincode/$CC_NAME.contract"; fi
  for i in 0 1 2; do endpoints+=(--endpoint "${ORGS[$i]}=$HOST:${PEER_PORTS[$i]}"); done
  (cd "$REPO" && "$PY" -m network.fabric profile "$STATE" "${endpoints[@]}" --chaincode "$CC_NAME" \
    --file "$conn" >/dev/null)
  # What the servers run, for clients that reuse this network (tests check it).
  printf '%s\n' "$CONTRACT" >"$record"
  log "waiting until every org's Gateway can endorse $CC_NAME"
  (cd "$REPO" && "$PY" -m network.fabric wait-ready "$STATE/$conn" \
    --timeout "${MIP_FABRIC_READY_TIMEOUT:-120}")
  log "deployed $CC_NAME in $((SECONDS - t0))s; clients: MIP_CONNECTION=$STATE/$conn"
}

# ------------------------------------------------------------------------------ status

# all_names: every process name with a pid file: orderers, peers, then chaincode servers.
all_names() {
  local n f
  for n in "${ORDERER_NAMES[@]}" peer-hospital peer-school peer-pharmacy; do
    [[ -f "$PIDS/$n.pid" ]] && echo "$n"
  done
  for f in "$PIDS"/cc-*.pid; do [[ -f "$f" ]] && basename "$f" .pid; done
  return 0
}

cmd_status() {
  local n pid start any=0 f
  local release=""
  [[ -f "$STATE/fabric-version" ]] && release=", Fabric $(cat "$STATE/fabric-version")"
  echo "state: $STATE ($N_ORDERERS orderer(s)$release)"
  for n in $(all_names); do
    any=1
    read -r pid start <"$PIDS/$n.pid"
    if pid_alive "$n"; then echo "  $n: running (pid $pid)"; else echo "  $n: STOPPED"; fi
  done
  ((any)) || { echo "  no processes started"; return 0; }
  require_bins peer
  pid_alive peer-hospital || return 0
  local info
  info="$(as_admin 0 channel getinfo -c "$CHANNEL" 2>/dev/null | sed -n 's/^Blockchain info: //p')"
  if [[ -n "$info" ]]; then
    echo "channel $CHANNEL: height $(echo "$info" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["height"])')"
  else
    echo "channel $CHANNEL: not joined"
  fi
  as_admin 0 lifecycle chaincode querycommitted -C "$CHANNEL" 2>/dev/null | sed 1d |
    sed 's/^/  committed: /' || true
  [[ -f "$STATE/chaincode/contract" ]] && echo "  contract (mip): $(cat "$STATE/chaincode/contract")"
  for f in "$STATE"/chaincode/*.contract; do
    [[ -f "$f" ]] && echo "  contract ($(basename "$f" .contract)): $(cat "$f")"
  done
  for f in "$STATE"/connection*.json; do [[ -f "$f" ]] && echo "connection profile: $f"; done
  return 0
}

# ------------------------------------------------------------------------------ down / clean

# group_alive NAME: the recorded process, or anything left in its process group, still runs.
group_alive() {
  local pid start
  [[ -f "$PIDS/$1.pid" ]] || return 1
  read -r pid start <"$PIDS/$1.pid"
  pid_alive "$1" || pgrep -g "$pid" >/dev/null
}

# stop_many NAME...: SIGTERM the process groups we started (all at once: the chaincode servers
# wait out a 2s gRPC grace period), SIGKILL what is left after 10s; check nothing remains.
stop_many() {
  local name pid start i waiting
  for name in "$@"; do
    [[ -f "$PIDS/$name.pid" ]] || continue
    read -r pid start <"$PIDS/$name.pid"
    # Only signal a group whose leader is still the process we started (pid reuse).
    pid_alive "$name" && { kill -TERM -- "-$pid" 2>/dev/null || true; }
  done
  for ((i = 0; i < 100; i++)); do
    waiting=0
    for name in "$@"; do group_alive "$name" && waiting=1; done
    ((waiting)) || break
    sleep 0.1
  done
  for name in "$@"; do
    [[ -f "$PIDS/$name.pid" ]] || continue
    read -r pid start <"$PIDS/$name.pid"
    if group_alive "$name"; then
      log "$name did not stop on SIGTERM, killing"
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 0.2
      group_alive "$name" && die "$name (pid $pid) is still running"
    fi
    rm -f "$PIDS/$name.pid"
    log "stopped $name"
  done
}

stop_one() { stop_many "$1"; }

cmd_down() {
  [[ -d "$PIDS" ]] || { log "nothing running ($STATE)"; return 0; }
  # Chaincode servers and peers together, the orderers last (peers would otherwise log
  # failed deliveries while they shut down).
  local names=() n
  for n in $(all_names); do [[ "$n" == orderer* ]] || names+=("$n"); done
  ((${#names[@]} == 0)) || stop_many "${names[@]}"
  stop_many "${ORDERER_NAMES[@]}"
  local left
  left="$(ls "$PIDS"/*.pid 2>/dev/null || true)"
  [[ -z "$left" ]] || die "unknown pid files left in $PIDS: $left"
  log "network down: no process left"
}

cmd_clean() {
  cmd_down
  if [[ -d "$STATE" ]]; then
    [[ -f "$STATE/$MARKER" ]] || die "$STATE has no $MARKER: not removing a folder this script did not create"
    rm -rf -- "$STATE"
    log "removed $STATE"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  deploy) cmd_deploy ;;
  status) cmd_status ;;
  down) cmd_down ;;
  clean) cmd_clean ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
