package caddymodule

import (
	"fmt"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "delivery-check",
		Usage: "[--data_dir <path>]",
		Short: "Checks the delivery registry against the docroots",
		Long: `
Compares the registry in the data folder with the docroots it knows and
lists cached files that nothing could invalidate, dangling entries, broken
reverse-index keys and left-over temp files, along with the queue lengths.
Run it while the edge is stopped (the registry is locked while it runs).
Exits with status 1 when it finds a problem.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("data_dir", DefaultDataDir, "The edge's data folder")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdCheck)
		},
	})
}

func cmdCheck(fl caddycmd.Flags) (int, error) {
	eng, err := cache.Open(cache.Options{DataDir: fl.String("data_dir"), Logger: zap.NewNop()})
	if err != nil {
		return exitFailed, err
	}
	defer eng.Close()
	rep, err := eng.Check()
	if err != nil {
		return exitFailed, err
	}
	st := eng.Stats()
	fmt.Fprintf(os.Stdout, "%s\nqueues: %d removal, %d pre-generation\n", rep, st.RemovalQueue, st.PregenQueue)
	if rep.Problems() > 0 {
		return 1, nil
	}
	return 0, nil
}

// exitFailed mirrors caddy's exit code for a command that
// could not start its work.
const exitFailed = 1
