#!/usr/bin/env bash
# The flyCes demo on a fresh machine: installs what is needed, starts an all-in-one cluster,
# builds and imports the web image, applies examples/web.yaml, and fetches the page from
# every pod. The cluster keeps running in the foreground afterwards; Ctrl-C stops it.
#
# Usage: scripts/demo.sh [DATA_DIR]   (default ~/.flyces)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data_dir=${1:-$HOME/.flyces}
bash "$here/scripts/setup.sh"

flyces=("node" "$here/bin/flyces.js")
"${flyces[@]}" up --data-dir "$data_dir" 2>"$data_dir.log" &
up_pid=$!
# A background job of a script ignores SIGINT, so flyces up is stopped with SIGTERM, which
# it handles the same way: the control plane stops, the pods keep running.
trap 'kill -TERM $up_pid 2>/dev/null; wait $up_pid' EXIT
trap 'exit 130' INT TERM
export KUBECONFIG=$data_dir/kubeconfig

echo "demo: waiting for the node to be Ready (log: $data_dir.log)"
for _ in $(seq 1 120); do
  if [[ -f $KUBECONFIG ]] && kubectl get nodes 2>/dev/null | grep -q ' Ready '; then break; fi
  kill -0 $up_pid 2>/dev/null || { echo "demo: flyces up stopped; see $data_dir.log" >&2; exit 1; }
  sleep 0.5
done

archive=$(mktemp /tmp/flyces-web.XXXXXX.tar)
bash "$here/examples/build-image.sh" "$archive"
"${flyces[@]}" image import --data-dir "$data_dir" "$archive"
rm -f "$archive"

kubectl apply -f "$here/examples/web.yaml"
kubectl rollout status deployment/web --timeout=120s
kubectl get pods -o wide
for ip in $(kubectl get pods -l app=web -o jsonpath='{.items[*].status.podIP}'); do
  printf 'GET http://%s:8080/ -> ' "$ip"
  node -e "fetch('http://$ip:8080/').then(r => r.text()).then(t => console.log(t.match(/<h1>(.*)<\/h1>/)?.[1] ?? t.length + ' bytes'))"
done

echo
echo "demo: the cluster is running. In another shell: export KUBECONFIG=$KUBECONFIG"
echo "demo: press Ctrl-C to stop it; then 'node bin/flyces.js down --data-dir $data_dir' removes the pods' containers."
wait $up_pid
