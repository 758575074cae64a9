// Command caddy is Caddy with the delivery edge's modules, the same binary
// `./xcaddy.sh build` makes. The end-to-end tests build it with `go build`
// when no binary is given to them.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/delivery-edge/edge/caddymodule"
)

func main() {
	caddycmd.Main()
}
