package caddymodule

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/delivery-edge/edge/internal/cli"
	"github.com/delivery-edge/edge/internal/jobs"
)

// The delivery commands that run a job on the edge and follow it: warm,
// check, rebuild. `check --offline` opens the data folder itself
// (command.go).

func cliJobCommands() []*cobra.Command {
	warm := &cobra.Command{
		Use:   "warm [<url>...] [--from <file>|-] [--sitemap <url>]",
		Short: "Renders the pages that are not cached (URLs, a file of URLs, or a sitemap)",
		RunE:  cliRun(cliWarm),
	}
	warm.Flags().String("from", "", "A file with one URL a line (- for stdin)")
	warm.Flags().String("sitemap", "", "A sitemap (or sitemap index) whose URLs to warm")
	warm.Flags().String("host", "", "The site's host (with several sites)")
	warm.Flags().Int("concurrency", 0, "Renders at once (1-8, default 8)")
	check := &cobra.Command{
		Use:   "check [--repair] [--offline [--data_dir <path>]]",
		Short: "Checks the registry against the docroots (exit status 1 on findings)",
		Args:  args(0, 0),
		RunE:  cliRun(cliCheck),
	}
	check.Flags().Bool("repair", false, "Repair what the check finds")
	check.Flags().Bool("offline", false, "Open the data folder itself (the edge must be stopped)")
	check.Flags().String("data_dir", DefaultDataDir, "The edge's data folder (with --offline)")
	rebuild := &cobra.Command{
		Use:   "rebuild --yes",
		Short: "Empties the cache while it serves (every page is rendered again when asked for)",
		Args:  args(0, 0),
		RunE:  cliRun(cliRebuild),
	}
	rebuild.Flags().Bool("yes", false, "Confirm: the whole cache is emptied")
	return []*cobra.Command{warm, check, rebuild}
}

// maxWarmFile bounds a file of URLs read by warm (the admin API takes at
// most 100,000 URLs and 8 MiB).
const maxWarmFile = maxAdminBody

func cliWarm(c *cliCall, a []string) error {
	req := warmRequest{URLs: a, Sitemap: c.fl.String("sitemap"), Host: c.fl.String("host"),
		Concurrency: c.fl.Int("concurrency")}
	if from := c.fl.String("from"); from != "" {
		urls, err := readURLs(from, c.cmd.InOrStdin())
		if err != nil {
			return err
		}
		req.URLs = append(req.URLs, urls...)
	}
	if (len(req.URLs) == 0) == (req.Sitemap == "") {
		return usagef("name urls (arguments or --from) or a --sitemap")
	}
	var start jobs.Snapshot
	if _, err := c.post("/delivery/warm", req, &start); err != nil {
		return err
	}
	s, err := c.follow(start)
	if !c.json && s.State == jobs.StateDone {
		if perr := printResult(c, s.Result); perr != nil {
			return perr
		}
	}
	return err
}

// readURLs reads one URL a line (blank lines and # comments skipped).
func readURLs(name string, stdin io.Reader) ([]string, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var urls []string
	sc := bufio.NewScanner(io.LimitReader(r, maxWarmFile+1))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	n := 0
	for sc.Scan() {
		n += len(sc.Bytes()) + 1
		if n > maxWarmFile {
			return nil, fmt.Errorf("%s: larger than %d bytes", name, maxWarmFile)
		}
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			urls = append(urls, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return urls, nil
}

func cliCheck(c *cliCall, _ []string) error {
	if c.fl.Bool("offline") {
		return checkOffline(c, c.fl.String("data_dir"), c.fl.Bool("repair"))
	}
	var start jobs.Snapshot
	if _, err := c.post("/delivery/check", checkRequest{Repair: c.fl.Bool("repair")}, &start); err != nil {
		return err
	}
	s, err := c.follow(start)
	if err != nil {
		return err
	}
	var res checkResult
	if s.Result != nil {
		b, _ := json.Marshal(s.Result)
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("the check's result: %w", err)
		}
	}
	if !c.json {
		if err := printCheck(c.out, res); err != nil {
			return err
		}
	}
	if res.Problems > 0 {
		return fmt.Errorf("the check found %d problems", res.Problems)
	}
	return nil
}

// printCheck prints a check's result: the counts, then one line per
// finding.
func printCheck(w io.Writer, r checkResult) error {
	fmt.Fprintf(w, "%d files, %d entries, %d problems (%d retired entries, %d retired keys wait for the sweep)\n",
		r.Files, r.Entries, r.Problems, r.RetiredEntries, r.RetiredKeys)
	t := cli.NewTable(w)
	for _, l := range []struct {
		what  string
		names []string
	}{{"unregistered", r.Unregistered}, {"dangling", r.Dangling}, {"bad index", r.BadIndex}, {"temp file", r.TempFiles}} {
		for _, n := range l.names {
			t.Row(l.what, n)
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if r.Truncated {
		fmt.Fprintf(w, "(lists cut at %d names)\n", maxCheckListed)
	}
	if rp := r.Repair; rp != nil {
		fmt.Fprintf(w, "repaired: %d dangling entries removed, %d unregistered files renamed to .old, index %d added %d removed, %d skipped\n",
			rp.DanglingRemoved, rp.UnregisteredRenamed, rp.Index.Added, rp.Index.Removed, rp.Skipped)
	}
	return nil
}

func cliRebuild(c *cliCall, _ []string) error {
	if !c.fl.Bool("yes") {
		return usageError{errors.New("rebuild empties the whole cache; confirm with --yes")}
	}
	var start jobs.Snapshot
	if _, err := c.post("/delivery/rebuild", nil, &start); err != nil {
		return err
	}
	s, err := c.follow(start)
	if !c.json && s.State == jobs.StateDone {
		if perr := printResult(c, s.Result); perr != nil {
			return perr
		}
	}
	return err
}
