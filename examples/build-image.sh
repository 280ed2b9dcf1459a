#!/usr/bin/env bash
# Builds the flyCes demo web image (busybox httpd serving examples/web/index.html) from
# Debian's busybox-static and writes it as an OCI archive that `miniC` can import.
#
# Usage: examples/build-image.sh OUT.tar [NAME]
#   NAME defaults to localhost/flyces-web:1 and is stored in the archive's index.json as
#   org.opencontainers.image.ref.name.
set -euo pipefail

die() {
  echo "build-image: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed (Debian package: $2)"
}

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 OUT.tar [NAME]"
out=$1
name=${2:-localhost/flyces-web:1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}

need umoci umoci
need skopeo skopeo
[[ -x $busybox ]] || die "$busybox not found (Debian package: busybox-static)"
# A dynamically linked busybox would need the host's libc inside the image.
if command -v ldd >/dev/null && ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; install busybox-static"
fi
[[ -f $here/web/index.html ]] || die "$here/web/index.html is missing"

work=$(mktemp -d /tmp/flyces-build-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

umoci init --layout "$work/oci"
umoci new --image "$work/oci:web"
umoci unpack --image "$work/oci:web" "$work/bundle" >/dev/null

rootfs=$work/bundle/rootfs
mkdir -p "$rootfs/bin" "$rootfs/www" "$rootfs/tmp" "$rootfs/etc"
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
done
cp "$here/web/index.html" "$rootfs/www/index.html"
umoci repack --image "$work/oci:web" "$work/bundle" >/dev/null

# httpd as pid 1 would ignore SIGTERM (the kernel drops signals pid 1 has no handler for),
# so a small shell stays pid 1 and exits on TERM; the namespace's other processes go with it.
umoci config --image "$work/oci:web" \
  --config.entrypoint /bin/sh --config.entrypoint -c \
  --config.entrypoint 'trap "exit 0" TERM; httpd -f -v -p 8080 -h /www & wait' \
  --config.env PATH=/bin \
  --config.workingdir /www \
  --config.exposedports 8080/tcp \
  --config.stopsignal SIGTERM \
  --architecture amd64 --os linux

# skopeo refuses to copy without a trust policy; keep ours private instead of /etc.
policy=$work/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"
rm -f "$out"
skopeo --policy "$policy" copy --quiet "oci:$work/oci:web" "oci-archive:$out:$name"
echo "build-image: wrote $name to $out" >&2
