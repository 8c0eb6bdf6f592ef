#!/bin/sh
# Pod network agent of the offline kind node image (see ../default-cni.yaml).
# Runs on every node (hostNetwork, privileged) and, every few seconds:
#  - writes a ptp + host-local conflist for this node's spec.podCIDR, which is
#    what makes containerd's CRI (and so the node) network-ready;
#  - routes every other node's podCIDR via that node's InternalIP, which gives
#    pod-to-pod traffic across nodes on kind's flat docker network;
#  - masquerades pod traffic leaving the pod network (POD_SUBNET).
set -u

SA=/var/run/secrets/kubernetes.io/serviceaccount
CONF=/etc/cni/net.d/10-offline-cni.conflist
INTERVAL=${SYNC_INTERVAL:-5}
# A node is Ready only once its conflist is written: a sync that failed (no podCIDR yet, the
# API not answering) is tried again in a second.
RETRY=${SYNC_RETRY:-1}

# kind patches CONTROL_PLANE_ENDPOINT in, so this works before kube-proxy has
# programmed the kubernetes Service.
if [ -n "${CONTROL_PLANE_ENDPOINT:-}" ]; then
  API="https://${CONTROL_PLANE_ENDPOINT}"
else
  API="https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}"
fi

log() { echo "$(date -u +%H:%M:%S) $*"; }

nodes_json() {
  curl -sS --fail --max-time 10 --cacert "$SA/ca.crt" \
    -H "Authorization: Bearer $(cat "$SA/token")" "$API/api/v1/nodes"
}

write_conf() {
  tmp="$CONF.tmp"
  cat > "$tmp" <<CONF
{
  "cniVersion": "0.3.1",
  "name": "offline-cni",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "$1"}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
  if cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
  else
    mv "$tmp" "$CONF" && log "wrote $CONF for $1"
  fi
}

masquerade() {
  if ! iptables -t nat -C POSTROUTING -s "$1" ! -d "$POD_SUBNET" -j MASQUERADE 2>/dev/null; then
    iptables -t nat -A POSTROUTING -s "$1" ! -d "$POD_SUBNET" -j MASQUERADE &&
      log "masquerading $1 -> outside $POD_SUBNET"
  fi
}

sync_once() {
  json=$(nodes_json) || return 1
  mine=$(printf '%s' "$json" | jq -r --arg n "$NODE_NAME" \
    '.items[] | select(.metadata.name == $n) | .spec.podCIDR // empty')
  if [ -z "$mine" ]; then
    log "node $NODE_NAME has no podCIDR yet"
    return 1
  fi
  write_conf "$mine"
  if [ -n "${POD_SUBNET:-}" ]; then masquerade "$mine"; fi
  printf '%s' "$json" | jq -r --arg n "$NODE_NAME" '
    .items[] | select(.metadata.name != $n) | select(.spec.podCIDR != null)
    | [.spec.podCIDR, first(.status.addresses[] | select(.type == "InternalIP")
                            | .address | select(test(":") | not))] | @tsv' |
  while read -r cidr via; do
    case "$(ip route show "$cidr")" in
      *"via $via "*) ;;
      *) ip route replace "$cidr" via "$via" && log "route $cidr via $via" ;;
    esac
  done
}

log "starting on $NODE_NAME, API $API"
while :; do
  if sync_once; then
    sleep "$INTERVAL"
  else
    log "sync failed, retrying in ${RETRY}s"
    sleep "$RETRY"
  fi
done
