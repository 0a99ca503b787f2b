#!/usr/bin/env bash
# MIP's real Hyperledger Fabric 2.5 network on this machine (no Docker), modelled on
# fabric-samples' test-network-nano-bash: one etcdraft orderer and one peer per org
# (HospitalMSP, SchoolMSP, PharmacyMSP) as background processes on 127.0.0.1, the `mip`
# chaincode served as a service (python -m chaincode) by each org. See docs/deploy.md.
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
# builder from $FABRIC_BUILDERS or <dir of peer>/../builders/ccaas.
#
# Settings (environment):
#   MIP_FABRIC_DIR           state dir (default <repo>/var/fabric): crypto, ledgers, logs, pids
#   MIP_FABRIC_PORT_OFFSET   added to every port below (default 0)
#       orderer 7050, orderer admin 7053, orderer operations 9443,
#       peers 7051 / 8051 / 9051 (chaincode listener +1), peer operations 9444 / 9445 / 9446,
#       chaincode servers 7059 / 8059 / 9059
#   MIP_FABRIC_BATCH_TIMEOUT block cut timeout (default 20ms), MIP_FABRIC_BATCH_SIZE (100)
#   MIP_CHAINCODE_CONTRACT   module:Class[,...] served by the chaincode servers (default: the
#                            MIP contracts, chaincode.mip.CONTRACT_SPEC; the asset tests use
#                            chaincode.contracts.asset:AssetContract)
#   MIP_CHAINCODE_POLICY     chaincode endorsement policy (default: MIP's
#                            OR('HospitalMSP.peer','SchoolMSP.peer','PharmacyMSP.peer');
#                            "channel": the channel's Endorsement policy, MAJORITY)
#   MIP_CHAINCODE_SEQUENCE   definition sequence to approve/commit (default: 1, or keep the
#                            committed one); raise it to change a committed definition
#   MIP_CHAINCODE_TLS        true (default): mutual TLS between peers and chaincode servers
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
CC_NAME=mip
CC_VERSION=1
MARKER=.mip-fabric-state
MIP_POLICY="OR('HospitalMSP.peer','SchoolMSP.peer','PharmacyMSP.peer')"

OFF="${MIP_FABRIC_PORT_OFFSET:-0}"
[[ "$OFF" =~ ^[0-9]+$ ]] || { echo "MIP_FABRIC_PORT_OFFSET must be a number" >&2; exit 2; }
ORDERER_PORT=$((7050 + OFF))
ORDERER_ADMIN_PORT=$((7053 + OFF))
ORDERER_OPS_PORT=$((9443 + OFF))

ORGS=(HospitalMSP SchoolMSP PharmacyMSP)
NAMES=(hospital school pharmacy)
DOMAINS=(hospital.mip.local school.mip.local pharmacy.mip.local)
PEER_PORTS=($((7051 + OFF)) $((8051 + OFF)) $((9051 + OFF)))
PEER_OPS_PORTS=($((9444 + OFF)) $((9445 + OFF)) $((9446 + OFF)))
CC_PORTS=($((7059 + OFF)) $((8059 + OFF)) $((9059 + OFF)))

ORG_CRYPTO="$STATE/organizations"
ORDERER_DIR="$ORG_CRYPTO/ordererOrganizations/orderer.mip.local"
ORDERER_NODE="$ORDERER_DIR/orderers/orderer0.orderer.mip.local"
ORDERER_CA="$ORDERER_NODE/tls/ca.crt"
ORDERER_ADMIN_TLS="$ORDERER_DIR/users/Admin@orderer.mip.local/tls"
BLOCK="$STATE/channel-artifacts/$CHANNEL.block"
PIDS="$STATE/pids"
LOGS="$STATE/logs"

PY="${MIP_PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3 || true)"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "network.sh: $*" >&2; exit 1; }

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
    die "missing Fabric 2.5 binaries in $where: ${missing[*]} (set FABRIC_BIN to the folder" \
        "holding peer, orderer, configtxgen, osnadmin; FABRIC_BUILDERS to the ccaas builder)"
  fi
  [[ -n "$PY" ]] || die "no python found (set MIP_PYTHON or create $REPO/.venv)"
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

osnadmin_() {
  "$OSNADMIN" "$@" -o "$HOST:$ORDERER_ADMIN_PORT" --ca-file "$ORDERER_CA" \
    --client-cert "$ORDERER_ADMIN_TLS/client.crt" --client-key "$ORDERER_ADMIN_TLS/client.key"
}

# ------------------------------------------------------------------------------ up

start_orderer() {
  pid_alive orderer && { log "orderer already running"; return; }
  require_free_ports orderer "$ORDERER_PORT" "$ORDERER_ADMIN_PORT" "$ORDERER_OPS_PORT"
  log "starting orderer on $HOST:$ORDERER_PORT (admin $ORDERER_ADMIN_PORT)"
  mkdir -p "$STATE/data/orderer"
  start_bg orderer env FABRIC_CFG_PATH="$CFG_DIR" \
    FABRIC_LOGGING_SPEC="${MIP_FABRIC_LOG_SPEC:-info}" \
    ORDERER_GENERAL_LISTENADDRESS="$HOST" \
    ORDERER_GENERAL_LISTENPORT="$ORDERER_PORT" \
    ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
    ORDERER_GENERAL_LOCALMSPDIR="$ORDERER_NODE/msp" \
    ORDERER_GENERAL_TLS_PRIVATEKEY="$ORDERER_NODE/tls/server.key" \
    ORDERER_GENERAL_TLS_CERTIFICATE="$ORDERER_NODE/tls/server.crt" \
    ORDERER_GENERAL_TLS_ROOTCAS="$ORDERER_CA" \
    ORDERER_FILELEDGER_LOCATION="$STATE/data/orderer" \
    ORDERER_CONSENSUS_WALDIR="$STATE/data/orderer/etcdraft/wal" \
    ORDERER_CONSENSUS_SNAPDIR="$STATE/data/orderer/etcdraft/snapshot" \
    ORDERER_OPERATIONS_LISTENADDRESS="$HOST:$ORDERER_OPS_PORT" \
    ORDERER_ADMIN_LISTENADDRESS="$HOST:$ORDERER_ADMIN_PORT" \
    ORDERER_ADMIN_TLS_CERTIFICATE="$ORDERER_NODE/tls/server.crt" \
    ORDERER_ADMIN_TLS_PRIVATEKEY="$ORDERER_NODE/tls/server.key" \
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
  start_bg "$name" env FABRIC_CFG_PATH="$CFG_DIR" \
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
  require_bins peer orderer configtxgen osnadmin
  local t0=$SECONDS i
  mkdir -p "$STATE" "$PIDS" "$LOGS"
  touch "$STATE/$MARKER"
  log "state in $STATE"
  log "crypto material (cryptogen layout, network.devnet.pki)"
  (cd "$REPO" && "$PY" -m network.fabric crypto "$STATE")
  if [[ ! -f "$BLOCK" ]]; then
    log "channel genesis block for $CHANNEL (batch timeout ${MIP_FABRIC_BATCH_TIMEOUT:-20ms})"
    (cd "$REPO" && "$PY" -m network.fabric render "$CFG_DIR/configtx.yaml" \
      "$STATE/config/configtx.yaml" CRYPTO="$ORG_CRYPTO" \
      ORDERER_HOST="$HOST" ORDERER_PORT="$ORDERER_PORT" \
      HOSPITAL_HOST="$HOST" HOSPITAL_PORT="${PEER_PORTS[0]}" \
      SCHOOL_HOST="$HOST" SCHOOL_PORT="${PEER_PORTS[1]}" \
      PHARMACY_HOST="$HOST" PHARMACY_PORT="${PEER_PORTS[2]}" \
      BATCH_TIMEOUT="${MIP_FABRIC_BATCH_TIMEOUT:-20ms}" BATCH_SIZE="${MIP_FABRIC_BATCH_SIZE:-100}")
    mkdir -p "$(dirname "$BLOCK")"
    FABRIC_LOGGING_SPEC=warning "$CONFIGTXGEN" -configPath "$STATE/config" -profile MIPChannel \
      -channelID "$CHANNEL" -outputBlock "$BLOCK" >"$LOGS/configtxgen.log" 2>&1 ||
      { cat "$LOGS/configtxgen.log" >&2; die "configtxgen failed"; }
  fi
  start_orderer
  for i in 0 1 2; do start_peer "$i"; done
  wait_healthz orderer "$ORDERER_OPS_PORT"
  for i in 0 1 2; do wait_healthz "peer-${NAMES[$i]}" "${PEER_OPS_PORTS[$i]}"; done
  if osnadmin_ channel list 2>/dev/null | grep -q "\"$CHANNEL\""; then
    log "orderer already serves $CHANNEL"
  else
    log "orderer joins $CHANNEL (osnadmin channel join)"
    osnadmin_ channel join --channelID "$CHANNEL" --config-block "$BLOCK" >"$LOGS/osnadmin.log" 2>&1 ||
      { cat "$LOGS/osnadmin.log" >&2; die "osnadmin channel join failed"; }
  fi
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
  local n
  for n in orderer peer-hospital peer-school peer-pharmacy; do
    pid_alive "$n" || die "$n is not running: run scripts/network.sh up first"
  done
}

start_chaincode() {
  local i="$1" id="$2" name="cc-${NAMES[$i]}" d="${DOMAINS[$i]}"
  local tls="$STATE/chaincode/$d/tls" addr="$HOST:${CC_PORTS[$i]}"
  if pid_alive "$name"; then
    # The package holds only the server's address: the same id may serve another contract.
    if [[ "$(cat "$STATE/chaincode/$d/running_id" 2>/dev/null)" == "$id $CONTRACT" ]]; then
      log "$name already serves $id"; return
    fi
    stop_one "$name"
  fi
  require_free_ports "$name" "${CC_PORTS[$i]}"
  log "starting chaincode server for ${ORGS[$i]} on $addr"
  local envs=(CHAINCODE_SERVER_ADDRESS="$addr" CHAINCODE_ID="$id")
  if [[ "${MIP_CHAINCODE_TLS:-true}" == "true" ]]; then
    envs+=(CHAINCODE_TLS_DISABLED=false CHAINCODE_TLS_KEY="$tls/server/server.key"
      CHAINCODE_TLS_CERT="$tls/server/server.crt"
      CHAINCODE_CLIENT_CA_CERT="$ORG_CRYPTO/peerOrganizations/$d/tlsca/tlsca.$d-cert.pem")
  else
    envs+=(CHAINCODE_TLS_DISABLED=true)
  fi
  envs+=(CHAINCODE_CONTRACT="$CONTRACT")
  (cd "$REPO" && start_bg "$name" env "${envs[@]}" PYTHONPATH="$REPO" "$PY" -m chaincode)
  echo "$id $CONTRACT" >"$STATE/chaincode/$d/running_id"
}

committed_sequence() {
  as_admin 0 lifecycle chaincode querycommitted -C "$CHANNEL" -n "$CC_NAME" -O json 2>/dev/null |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["sequence"])' 2>/dev/null || true
}

# resolve_contract: CONTRACT and POLICY_ARGS from the settings (see the header).
CONTRACT="" POLICY_ARGS=()
resolve_contract() {
  CONTRACT="${MIP_CHAINCODE_CONTRACT:-}"
  if [[ -z "$CONTRACT" ]]; then
    CONTRACT="$(cd "$REPO" && "$PY" -c 'from chaincode.mip import CONTRACT_SPEC; print(CONTRACT_SPEC)')" ||
      die "cannot read chaincode.mip.CONTRACT_SPEC with $PY"
  fi
  local policy="${MIP_CHAINCODE_POLICY:-$MIP_POLICY}"
  if [[ "$policy" == "channel" ]]; then POLICY_ARGS=(); else POLICY_ARGS=(--signature-policy "$policy"); fi
}

cmd_deploy() {
  require_bins peer
  require_running
  resolve_contract
  local t0=$SECONDS i
  local label="${CC_NAME}_${CC_VERSION}"
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
    local common=(-o "$HOST:$ORDERER_PORT" --tls --cafile "$ORDERER_CA" --channelID "$CHANNEL"
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

  local endpoints=()
  for i in 0 1 2; do endpoints+=(--endpoint "${ORGS[$i]}=$HOST:${PEER_PORTS[$i]}"); done
  (cd "$REPO" && "$PY" -m network.fabric profile "$STATE" "${endpoints[@]}" >/dev/null)
  # What the servers run, for clients that reuse this network (tests check it).
  printf '%s\n' "$CONTRACT" >"$STATE/chaincode/contract"
  log "waiting until every org's Gateway can endorse"
  (cd "$REPO" && "$PY" -m network.fabric wait-ready "$STATE/connection.json" \
    --timeout "${MIP_FABRIC_READY_TIMEOUT:-120}")
  log "deployed in $((SECONDS - t0))s; clients: MIP_CONNECTION=$STATE/connection.json"
}

# ------------------------------------------------------------------------------ status

cmd_status() {
  local n pid start any=0
  echo "state: $STATE"
  for n in orderer peer-hospital peer-school peer-pharmacy cc-hospital cc-school cc-pharmacy; do
    [[ -f "$PIDS/$n.pid" ]] || continue
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
  [[ -f "$STATE/chaincode/contract" ]] && echo "  contract: $(cat "$STATE/chaincode/contract")"
  [[ -f "$STATE/connection.json" ]] && echo "connection profile: $STATE/connection.json"
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
  # Chaincode servers and peers together, the orderer last (peers would otherwise log
  # failed deliveries while they shut down).
  stop_many cc-hospital cc-school cc-pharmacy peer-hospital peer-school peer-pharmacy
  stop_many orderer
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
