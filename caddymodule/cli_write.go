package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/cli"
	"github.com/delivery-edge/edge/internal/jobs"
)

// The delivery commands that change the cache at once: purge, flush,
// resource. A purge by a large prefix becomes a job and is followed.

func cliWriteCommands() []*cobra.Command {
	purge := &cobra.Command{
		Use:   "purge (<url> | --prefix <prefix>)",
		Short: "Invalidates one URL's file or every file under a prefix",
		Args:  args(0, 1),
		RunE:  cliRun(cliPurge),
	}
	purge.Flags().String("prefix", "", "Purge every registered file whose URL starts with it")
	purge.Flags().String("mode", "", "remove (to .old) or pregenerate (render again); default: as a content change")
	purge.Flags().String("host", "", "The site's host (with several sites)")
	flush := &cobra.Command{
		Use:   "flush <key> --group <group>",
		Short: "Flushes the files registered under a key, as the cache servlet does",
		Args:  args(1, 1),
		RunE:  cliRun(cliFlush),
	}
	flush.Flags().String("group", "", "The edge group (forwarded to its peers)")
	resource := &cobra.Command{
		Use:   "resource <name> <hash>",
		Short: "Announces a deploy of a resource: files rendered with another hash are invalidated",
		Args:  args(2, 2),
		RunE:  cliRun(cliResource),
	}
	return []*cobra.Command{purge, flush, resource}
}

func cliPurge(c *cliCall, a []string) error {
	req := purgeRequest{Prefix: c.fl.String("prefix"), Host: c.fl.String("host")}
	if len(a) == 1 {
		req.URL = a[0]
	}
	if (req.URL == "") == (req.Prefix == "") {
		return usagef("name a url or --prefix")
	}
	req.Mode = cache.PurgeMode(c.fl.String("mode"))
	if err := req.Mode.Check(); err != nil {
		return usageError{err}
	}
	var raw json.RawMessage
	st, err := c.post("/delivery/purge", req, &raw)
	if err != nil {
		return err
	}
	if st == http.StatusAccepted {
		var start jobs.Snapshot
		if err := json.Unmarshal(raw, &start); err != nil {
			return err
		}
		s, err := c.follow(start)
		if err == nil && !c.json {
			err = printResult(c, s.Result)
		}
		return err
	}
	if c.json {
		return c.printJSON(raw)
	}
	var res map[string]any
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "purged: %s files, %s queued\n", cli.Cell(res["files"]), cli.Cell(res["queued"]))
	return nil
}

func cliFlush(c *cliCall, a []string) error {
	g := c.fl.String("group")
	if g == "" {
		return usagef("--group is required")
	}
	var res map[string]any
	if _, err := c.post("/delivery/flush", flushRequest{Key: a[0], Group: g}, &res); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(res)
	}
	if res["applied"] == true {
		fmt.Fprintf(c.out, "flushed %q in group %q, forwarded to %s peers\n", a[0], g, cli.Cell(res["forwarded_to"]))
	} else {
		fmt.Fprintf(c.out, "%q in group %q was flushed already (in the flush log)\n", a[0], g)
	}
	return nil
}

func cliResource(c *cliCall, a []string) error {
	var res map[string]any
	if _, err := c.post("/delivery/resources", resourceRequest{Name: a[0], Hash: a[1]}, &res); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(res)
	}
	fmt.Fprintf(c.out, "%s is at %s: %s files invalidated\n", a[0], a[1], cli.Cell(res["invalidated"]))
	return nil
}

// printResult prints a job's result as a two-column table.
func printResult(c *cliCall, result any) error {
	m, ok := result.(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	t := cli.NewTable(c.out)
	for _, kv := range cli.Flatten(m) {
		t.Row(kv[0], kv[1])
	}
	return t.Flush()
}
