#!/usr/bin/env bash
# Build, run and test the delivery edge.
#
#   ./xcaddy.sh build        build ./caddy (Caddy + this project's modules) with xcaddy
#   ./xcaddy.sh demo         build, then run the sample origin and ./caddy with Caddyfile.example
#   ./xcaddy.sh test         build, then run every test (unit, fuzz seeds, end-to-end) against ./caddy
#   ./xcaddy.sh tools        install the test tools (versitygw) into ./.tools
#
# Only the Go toolchain is needed; xcaddy and the test tools are installed
# into ./.tools on first use. Versions are pinned here.
set -euo pipefail

CADDY_VERSION=v2.11.9
XCADDY_VERSION=v0.4.5
VERSITYGW_VERSION=v1.8.0
MODULE=github.com/delivery-edge/edge

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
tools="$here/.tools"
mkdir -p "$tools"
export PATH="$tools:$PATH"

# The module proxy answers this project's unpublished module path with an
# error instead of "not found"; "|off" makes Go fall back to the local
# replacement that xcaddy adds instead of failing.
proxy_first=$(go env GOPROXY | cut -d, -f1)
case "$proxy_first" in off | direct | "") xcaddy_proxy=$(go env GOPROXY) ;; *) xcaddy_proxy="$proxy_first|off" ;; esac

install_tool() { # name module@version
	if [ ! -x "$tools/$1" ]; then
		echo "installing $2 into .tools" >&2
		GOBIN="$tools" go install "$2"
	fi
}

build() {
	install_tool xcaddy "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
	echo "building ./caddy (Caddy $CADDY_VERSION with $MODULE)" >&2
	GOPROXY="$xcaddy_proxy" CGO_ENABLED="${CGO_ENABLED:-0}" XCADDY_SKIP_CLEANUP=0 \
		xcaddy build "$CADDY_VERSION" --output "$here/caddy" --with "$MODULE=$here"
	"$here/caddy" version
}

tools_for_tests() {
	install_tool versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
}

# Every reader's connection holds a file descriptor; a soft limit of 1024
# (a common default) is used up by a few hundred slow clients. Raise the
# soft limit to the hard one, at most 1048576 (Caddy's systemd unit uses
# LimitNOFILE=1048576); the hard limit is the operator's to set.
raise_open_files() {
	local hard soft
	hard=$(ulimit -Hn)
	soft=$(ulimit -Sn)
	if [ "$hard" = unlimited ] || [ "$hard" -gt 1048576 ]; then hard=1048576; fi
	if [ "$soft" != unlimited ] && [ "$soft" -lt "$hard" ]; then
		ulimit -Sn "$hard" || echo "demo: cannot raise the open-file limit above $soft" >&2
	fi
	echo "demo: open-file limit $(ulimit -Sn) (hard $(ulimit -Hn))" >&2
}

demo() {
	build
	raise_open_files
	go build -o "$tools/sample-origin" ./integration/cmd/sample-origin
	"$tools/sample-origin" -ssi=true &
	origin=$!
	trap 'kill $origin 2>/dev/null || true' EXIT
	for _ in $(seq 50); do # until the sample origin listens
		(exec 3<>/dev/tcp/127.0.0.1/1196) 2>/dev/null && break
		sleep 0.1
	done
	echo "demo: open http://127.0.0.1:8080/ (Ctrl-C stops)" >&2
	"$here/caddy" run --config Caddyfile.example --adapter caddyfile
}

run_tests() {
	tools_for_tests
	build
	export DELIVERY_CADDY="$here/caddy" VERSITYGW="$tools/versitygw"
	go vet ./...
	go test -count=1 -timeout 30m ./...
}

case "${1:-build}" in
build) build ;;
demo) demo ;;
test) run_tests ;;
tools) tools_for_tests ;;
*)
	sed -n '2,9p' "$0" >&2
	exit 2
	;;
esac
