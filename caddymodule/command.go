package caddymodule

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/delivery-edge/edge/cache"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "delivery-check",
		Usage: "[--data_dir <path>] [--json]",
		Short: "Deprecated: use caddy delivery check --offline",
		Long: `
Deprecated name of "caddy delivery check --offline", kept for scripts.

Compares the registry in the data folder with the docroots it knows and
lists cached files that nothing could invalidate, dangling entries, broken
reverse-index keys and left-over temp files, along with the queue lengths.
Run it while the edge is stopped (the registry is locked while it runs).
Progress goes to stderr, the report to stdout.
Exits with status 1 when it finds a problem.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("data_dir", DefaultDataDir, "The edge's data folder")
			cmd.Flags().Bool("json", false, "Print the report as JSON")
			cmd.Args = args(0, 0)
			cmd.RunE = cliRun(func(c *cliCall, _ []string) error {
				fmt.Fprintln(os.Stderr, `note: "caddy delivery-check" is deprecated; use "caddy delivery check --offline"`)
				return checkOffline(c, c.fl.String("data_dir"), false)
			})
		},
	})
}

// checkOffline is "delivery check --offline": the check on a data folder
// the edge has not open, with its progress on stderr; with repair, what
// it finds is repaired.
func checkOffline(c *cliCall, dataDir string, repair bool) error {
	eng, err := cache.Open(cache.Options{DataDir: dataDir, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer eng.Close()
	since := time.Now()
	p := newProgressLine(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())), time.Now)
	rep, err := eng.Check(p.update)
	p.finish()
	if err != nil {
		return err
	}
	st := eng.Stats()
	var rr *cache.RepairResult
	if repair && rep.Problems() > 0 {
		r, err := eng.Repair(context.Background(), rep, since, nil)
		if err != nil {
			return fmt.Errorf("repair: %w", err)
		}
		rr = &r
	}
	if c.json {
		res := checkResult{Files: rep.Files, Entries: rep.Entries, Problems: rep.Problems(),
			RetiredEntries: rep.RetiredEntries, RetiredKeys: rep.RetiredKeys, Repair: rr}
		res.Unregistered, res.Truncated = firstN(rep.Unregistered, res.Truncated)
		res.Dangling, res.Truncated = firstN(rep.Dangling, res.Truncated)
		res.BadIndex, res.Truncated = firstN(rep.BadIndex, res.Truncated)
		res.TempFiles, res.Truncated = firstN(rep.TempFiles, res.Truncated)
		if err := c.printJSON(map[string]any{"check": res,
			"queues": map[string]int{"removal": st.RemovalQueue, "pregeneration": st.PregenQueue}}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.out, "%s\nqueues: %d removal, %d pre-generation\n", rep, st.RemovalQueue, st.PregenQueue)
		if rr != nil {
			fmt.Fprintf(c.out, "repaired: %d dangling entries removed, %d unregistered files renamed to .old, index %d added %d removed, %d skipped\n",
				rr.DanglingRemoved, rr.UnregisteredRenamed, rr.Index.Added, rr.Index.Removed, rr.Skipped)
		}
	}
	if rep.Problems() > 0 {
		return fmt.Errorf("the check found %d problems", rep.Problems())
	}
	return nil
}

// How often the check's progress is shown: a terminal line is redrawn a
// few times a second; a log (stderr redirected) gets a line now and then.
const (
	progressTerminalEvery = 250 * time.Millisecond
	progressLogEvery      = 10 * time.Second
)

// progressLine shows the progress of a long check on stderr: on a
// terminal one line redrawn in place, otherwise a plain line at a slower
// pace.
type progressLine struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	every    time.Duration
	start    time.Time
	next     time.Time // when the next line may be shown
	last     cache.CheckProgress
	width    int  // of the line on the terminal, to blank out a longer one
	shown    bool // a line was written
}

func newProgressLine(w io.Writer, terminal bool, now func() time.Time) *progressLine {
	p := &progressLine{w: w, terminal: terminal, now: now, every: progressLogEvery}
	if terminal {
		p.every = progressTerminalEvery
	}
	p.start = now()
	p.next = p.start.Add(p.every)
	return p
}

// update is the check's progress callback.
func (p *progressLine) update(c cache.CheckProgress) {
	p.last = c
	if now := p.now(); !now.Before(p.next) {
		p.next = now.Add(p.every)
		p.show(now)
	}
}

// finish shows the final counts if any progress was shown, and ends the
// terminal line so that the report starts on its own.
func (p *progressLine) finish() {
	if !p.shown {
		return
	}
	p.show(p.now())
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *progressLine) show(now time.Time) {
	c := p.last
	line := fmt.Sprintf("checking: %d entries, %d index keys, %d folders, %d files (%s)",
		c.Entries, c.IndexKeys, c.Folders, c.Files, now.Sub(p.start).Round(time.Second))
	if !p.terminal {
		fmt.Fprintln(p.w, line)
		p.shown = true
		return
	}
	pad := max(0, p.width-len(line))
	fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
	p.width = len(line)
	p.shown = true
}
