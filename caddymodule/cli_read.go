package caddymodule

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/delivery-edge/edge/internal/cli"
)

// The delivery commands that look: stats, queues, files, dependents.

func cliReadCommands() []*cobra.Command {
	stats := &cobra.Command{
		Use:   "stats",
		Short: "The edge's figures (cache, queues, registry, staging, groups)",
		Args:  args(0, 0),
		RunE:  cliRun(cliStats),
	}
	queues := &cobra.Command{
		Use:   "queues",
		Short: "The next jobs of the invalidation queues",
		Args:  args(0, 0),
		RunE:  cliRun(cliQueues),
	}
	queues.Flags().String("queue", "", "removal or pregeneration (default: both)")
	queues.Flags().Int("limit", 20, "Jobs to list per queue (at most 1000)")
	files := &cobra.Command{
		Use:   "files <url>",
		Short: "What the edge knows of one URL's file",
		Args:  args(1, 1),
		RunE:  cliRun(cliFiles),
	}
	files.Flags().String("host", "", "The site's host (with several sites)")
	deps := &cobra.Command{
		Use:   "dependents (--document <id> | --node <path> | --key <key> | --resource <name>)",
		Short: "The files a change of a document, node, key or resource would invalidate",
		Args:  args(0, 0),
		RunE:  cliRun(cliDependents),
	}
	for _, k := range dependentKinds {
		deps.Flags().String(k, "", "The "+k+" to look up")
	}
	deps.Flags().Int("limit", 100, "Files to list (pages of at most 1000 are fetched)")
	deps.Flags().String("cursor", "", "Go on from the cursor a listing ended with")
	return []*cobra.Command{stats, queues, files, deps}
}

func cliStats(c *cliCall, _ []string) error {
	var v map[string]any
	if _, err := c.get("/delivery/stats", &v); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(v)
	}
	// The recent invalidations are a table of their own below the figures.
	var recent []any
	if inv, ok := v["invalidations"].(map[string]any); ok {
		recent, _ = inv["recent"].([]any)
		delete(inv, "recent")
	}
	t := cli.NewTable(c.out)
	for _, kv := range cli.Flatten(v) {
		t.Row(kv[0], kv[1])
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(recent) == 0 {
		return nil
	}
	fmt.Fprintln(c.out, "\nrecent invalidations:")
	t = cli.NewTable(c.out, "TIME", "SOURCE", "KIND", "ID", "DETAIL", "FILES", "REMOVAL", "PREGENERATION")
	for _, r := range recent {
		m, _ := r.(map[string]any)
		t.Row(m["time"], m["source"], m["kind"], m["id"], m["detail"], m["files"], m["removal"], m["pregeneration"])
	}
	return t.Flush()
}

// queueAnswer is the answer of GET /delivery/queues.
type queueAnswer struct {
	Queue string           `json:"queue"`
	Jobs  []map[string]any `json:"jobs"`
}

func cliQueues(c *cliCall, _ []string) error {
	names := []string{"removal", "pregeneration"}
	if q := c.fl.String("queue"); q != "" {
		names = []string{q}
	}
	limit := c.fl.Int("limit")
	if limit <= 0 {
		return usagef("--limit must be positive")
	}
	answers := map[string]queueAnswer{}
	for _, n := range names {
		var a queueAnswer
		if _, err := c.get("/delivery/queues?"+url.Values{"queue": {n}, "limit": {strconv.Itoa(limit)}}.Encode(), &a); err != nil {
			return err
		}
		answers[n] = a
	}
	if c.json {
		if len(names) == 1 {
			return c.printJSON(answers[names[0]])
		}
		return c.printJSON(answers)
	}
	t := cli.NewTable(c.out, "QUEUE", "OP", "PRIORITY", "AGE", "HOST", "KEY", "DOCROOT", "FILE")
	for _, n := range names {
		for _, j := range answers[n].Jobs {
			age := "-"
			if s, ok := j["age_seconds"].(float64); ok {
				age = fmt.Sprintf("%.1fs", s)
			}
			t.Row(n, j["op"], j["priority"], age, j["host"], j["key"], j["docroot"], j["file"])
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	for _, n := range names {
		if len(answers[n].Jobs) == 0 {
			fmt.Fprintf(c.out, "%s: empty\n", n)
		}
	}
	return nil
}

func cliFiles(c *cliCall, a []string) error {
	q := url.Values{"url": {a[0]}}
	if h := c.fl.String("host"); h != "" {
		q.Set("host", h)
	}
	var v map[string]any
	if _, err := c.get("/delivery/files?"+q.Encode(), &v); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(v)
	}
	deps, _ := v["dependencies"].([]any)
	res, _ := v["resources"].([]any)
	delete(v, "dependencies")
	delete(v, "resources")
	t := cli.NewTable(c.out)
	for _, kv := range cli.Flatten(v) {
		t.Row(kv[0], kv[1])
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(deps) > 0 {
		fmt.Fprintln(c.out, "\ndependencies:")
		t = cli.NewTable(c.out, "KIND", "NAME", "PROPS")
		for _, d := range deps {
			m, _ := d.(map[string]any)
			t.Row(m["kind"], m["name"], m["props"])
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if len(res) > 0 {
		fmt.Fprintln(c.out, "\nresources:")
		t = cli.NewTable(c.out, "NAME", "HASH", "NEWEST", "CURRENT")
		for _, r := range res {
			m, _ := r.(map[string]any)
			t.Row(m["name"], m["hash"], m["newest"], m["current"])
		}
		return t.Flush()
	}
	return nil
}

var dependentKinds = []string{"document", "node", "key", "resource"}

// dependentsPage is one answer of GET /delivery/dependents.
type dependentsPage struct {
	Files []map[string]any `json:"files"`
	Next  string           `json:"next,omitempty"`
}

// maxDependentsPage is the largest page the admin API answers.
const maxDependentsPage = 1000

func cliDependents(c *cliCall, _ []string) error {
	q := url.Values{}
	for _, k := range dependentKinds {
		if v := c.fl.String(k); v != "" {
			q.Set(k, v)
		}
	}
	if len(q) != 1 {
		return usagef("name exactly one of --document, --node, --key or --resource")
	}
	limit := c.fl.Int("limit")
	if limit <= 0 {
		return usagef("--limit must be positive")
	}
	// Pages until limit files are listed or there are no more; the
	// cursor to go on with is printed at the end.
	var all dependentsPage
	cursor := c.fl.String("cursor")
	for len(all.Files) < limit {
		q.Set("limit", strconv.Itoa(min(limit-len(all.Files), maxDependentsPage)))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p dependentsPage
		if _, err := c.get("/delivery/dependents?"+q.Encode(), &p); err != nil {
			return err
		}
		all.Files = append(all.Files, p.Files...)
		all.Next, cursor = p.Next, p.Next
		if p.Next == "" || len(p.Files) == 0 {
			break
		}
	}
	if all.Files == nil {
		all.Files = []map[string]any{}
	}
	if c.json {
		return c.printJSON(all)
	}
	t := cli.NewTable(c.out, "KEY", "DEPENDENCY", "PREGENERATE", "CREATED", "DOCROOT", "FILE")
	for _, f := range all.Files {
		dep := "-"
		if d, ok := f["dependency"].(map[string]any); ok {
			dep = cli.Cell(d["kind"]) + " " + cli.Cell(d["name"])
			if p, ok := d["props"].([]any); ok && len(p) > 0 {
				dep += " (" + cli.Cell(p) + ")"
			}
		}
		t.Row(f["key"], dep, f["pregenerate"], f["created"], f["docroot"], f["file"])
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d files\n", len(all.Files))
	if all.Next != "" {
		fmt.Fprintf(c.out, "more: --cursor %s\n", all.Next)
	}
	return nil
}
