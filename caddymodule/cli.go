package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/delivery-edge/edge/internal/cli"
	"github.com/delivery-edge/edge/internal/jobs"
)

// The `caddy delivery` command: subcommands that operate a running edge
// through its admin API (docs/admin-api.md), found as `caddy reload`
// finds it. The rendering (tables, progress, following a job) is in
// internal/cli; this file has the command, the admin client and the exit
// statuses, cli_*.go the subcommands.

// Exit statuses of the delivery commands.
const (
	exitOK      = 0
	exitFailure = 1 // an API error, a failed job, a check that found problems
	exitUsage   = 2
)

// Bounds of the client.
const (
	// cliTimeout is the default wait for one admin request.
	cliTimeout = 30 * time.Second
	// maxAnswer bounds an admin answer read by the client.
	maxAnswer = 64 << 20
	// jobPoll is how often a job is polled; progressLines how often a
	// line is printed when stdout is not a terminal.
	jobPoll       = 250 * time.Millisecond
	progressLines = 5 * time.Second
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "delivery",
		Usage: "<command> [--address <admin>] [--config <file>] [--json]",
		Short: "Operates a running delivery edge through its admin API",
		Long: `
Looks into and operates a running delivery edge through the admin API
(module admin.api.delivery). The admin endpoint is found as caddy reload
finds it: --address, else the admin address of the config (--config,
--adapter, or the Caddyfile in the current folder), else localhost:2019.

Tables by default, --json prints the API's JSON answers. Long jobs (warm,
check, rebuild, a large purge) show a progress bar with rate and ETA when
stdout is a terminal, otherwise a line every few seconds; Ctrl-C cancels
the job on the edge. The final line is printed in both cases.

Exit status: 0 ok, 1 failure (API error, job failed, check found
problems), 2 usage.`,
		CobraFunc: deliveryCommand,
	})
}

func deliveryCommand(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "The admin API's address")
	pf.StringP("config", "c", "", "Configuration file whose admin address to use")
	pf.StringP("adapter", "a", "", "Name of config adapter to apply")
	pf.Bool("json", false, "Print the JSON answers of the admin API")
	pf.Duration("timeout", cliTimeout, "How long to wait for one admin request")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return exitWith(c, exitUsage, err) })
	cmd.RunE = func(c *cobra.Command, args []string) error {
		c.SetOut(os.Stderr)
		_ = c.Help()
		if len(args) > 0 {
			return exitWith(c, exitUsage, fmt.Errorf("unknown command %q", args[0]))
		}
		return exitWith(c, exitUsage, errors.New("name a command"))
	}
	cmd.AddCommand(cliReadCommands()...)
	cmd.AddCommand(cliWriteCommands()...)
	cmd.AddCommand(cliJobCommands()...)
}

// exitWith returns err so that caddy exits with code (Caddy's command
// wrapper carries the status; it logs err).
func exitWith(cmd *cobra.Command, code int, err error) error {
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return code, err })(cmd, nil)
}

// cliRun is the RunE of a subcommand: fn gets the call's context; an
// error of fn exits 1 (usageError 2).
func cliRun(fn func(c *cliCall, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c := &cliCall{cmd: cmd, fl: caddycmd.Flags{FlagSet: cmd.Flags()}, out: cmd.OutOrStdout()}
		c.json = c.fl.Bool("json")
		err := fn(c, args)
		var u usageError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &u):
			return exitWith(cmd, exitUsage, err)
		default:
			return exitWith(cmd, exitFailure, err)
		}
	}
}

// usageError is a wrong use of a command (exit status 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// args checks the number of positional arguments (exit status 2).
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < min || len(a) > max {
			return exitWith(cmd, exitUsage, fmt.Errorf("%s takes %s", cmd.Name(), argCount(min, max)))
		}
		return nil
	}
}

func argCount(min, max int) string {
	switch {
	case max == 0:
		return "no arguments"
	case min == max:
		return fmt.Sprintf("%d argument(s)", min)
	}
	return fmt.Sprintf("%d to %d arguments", min, max)
}

// cliCall is one run of a subcommand.
type cliCall struct {
	cmd    *cobra.Command
	fl     caddycmd.Flags
	out    io.Writer
	json   bool
	client *adminClient
}

// admin is the client of the admin endpoint, found as `caddy reload`
// finds it.
func (c *cliCall) admin() (*adminClient, error) {
	if c.client != nil {
		return c.client, nil
	}
	address := c.fl.String("address")
	var cfg []byte
	var file string
	if address == "" {
		var err error
		cfg, file, _, err = caddycmd.LoadConfig(c.fl.String("config"), c.fl.String("adapter"))
		if err != nil {
			return nil, fmt.Errorf("loading the config for its admin address: %w", err)
		}
	}
	addr, err := caddycmd.DetermineAdminAPIAddress(address, cfg, file, c.fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("finding the admin address: %w", err)
	}
	c.client = &adminClient{addr: addr, timeout: c.fl.Duration("timeout")}
	return c.client, nil
}

// get and post call the admin API and decode the answer into out
// (unless nil); they return the status.
func (c *cliCall) get(uri string, out any) (int, error) {
	return c.call(http.MethodGet, uri, nil, out)
}

func (c *cliCall) post(uri string, body, out any) (int, error) {
	return c.call(http.MethodPost, uri, body, out)
}

func (c *cliCall) call(method, uri string, body, out any) (int, error) {
	a, err := c.admin()
	if err != nil {
		return 0, err
	}
	return a.do(method, uri, body, out)
}

// printJSON prints v as indented JSON.
func (c *cliCall) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.out, "%s\n", b)
	return err
}

// terminal tells whether stdout is a terminal.
func (c *cliCall) terminal() bool {
	f, ok := c.out.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// follow follows a job to its end: the progress (unless --json), the
// final line; Ctrl-C cancels it. A job that did not end done is an error.
func (c *cliCall) follow(start jobs.Snapshot) (jobs.Snapshot, error) {
	a, err := c.admin()
	if err != nil {
		return start, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var d cli.Display = quiet{}
	if !c.json {
		d = cli.NewDisplay(c.out, c.terminal(), progressLines, time.Now)
	}
	s, err := cli.Follow(ctx, jobAPI{a}, start, jobPoll, d)
	if c.json {
		if perr := c.printJSON(s); perr != nil {
			return s, perr
		}
	} else if s.ID != "" {
		fmt.Fprintln(c.out, cli.FinalLine(s))
		c.printJobErrors(s)
	}
	switch {
	case errors.Is(err, cli.ErrCancelled):
		return s, fmt.Errorf("job %s cancelled", s.ID)
	case err != nil:
		return s, err
	case s.State != jobs.StateDone:
		return s, fmt.Errorf("job %s %s: %s", s.ID, s.State, s.Error)
	}
	return s, nil
}

// maxErrorsShown bounds the job errors printed under the final line.
const maxErrorsShown = 10

func (c *cliCall) printJobErrors(s jobs.Snapshot) {
	for i, e := range s.Errors {
		if i == maxErrorsShown {
			fmt.Fprintf(c.out, "  … %d more errors (--json shows the first %d)\n", s.ErrorCount-maxErrorsShown, len(s.Errors))
			return
		}
		fmt.Fprintf(c.out, "  error: %s\n", e)
	}
}

type quiet struct{}

func (quiet) Update(jobs.Snapshot) {}
func (quiet) Finish()              {}

// adminClient calls the admin API with caddy's own request function
// (TCP or unix socket, the Origin header).
type adminClient struct {
	addr    string
	timeout time.Duration
}

// apiError is an error answer of the admin API.
type cliAPIError struct {
	Status  int
	Message string
}

func (e *cliAPIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// adminErrorText finds the status and body in the error of
// caddycmd.AdminAPIRequest ("caddy responded with error: HTTP 404: …").
var adminErrorText = regexp.MustCompile(`(?s)HTTP (\d{3}): (.*)$`)

func (a *adminClient) do(method, uri string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	type answer struct {
		status int
		raw    []byte
		err    error
	}
	done := make(chan answer, 1)
	// caddy's request function has no deadline; the wait is bounded here
	// (a request still hanging then ends with the process).
	go func() {
		resp, err := caddycmd.AdminAPIRequest(a.addr, method, uri, nil, r)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
		if err == nil && len(raw) > maxAnswer {
			err = fmt.Errorf("answer larger than %d bytes", maxAnswer)
		}
		done <- answer{status: resp.StatusCode, raw: raw, err: err}
	}()
	var ans answer
	select {
	case ans = <-done:
	case <-time.After(a.timeout):
		return 0, fmt.Errorf("%s %s at %s: no answer within %s", method, uri, a.addr, a.timeout)
	}
	if ans.err != nil {
		if m := adminErrorText.FindStringSubmatch(ans.err.Error()); m != nil {
			st, _ := strconv.Atoi(m[1])
			var e struct {
				Error string `json:"error"`
			}
			msg := string(bytes.TrimSpace([]byte(m[2])))
			if json.Unmarshal([]byte(msg), &e) == nil && e.Error != "" {
				msg = e.Error
			}
			return st, &cliAPIError{Status: st, Message: msg}
		}
		return 0, fmt.Errorf("admin API at %s: %w", a.addr, ans.err)
	}
	if out != nil {
		if err := json.Unmarshal(ans.raw, out); err != nil {
			return ans.status, fmt.Errorf("%s %s: answer is not JSON: %w", method, uri, err)
		}
	}
	return ans.status, nil
}

// jobAPI is the jobs route for cli.Follow.
type jobAPI struct{ a *adminClient }

func (j jobAPI) Get(id string) (jobs.Snapshot, error) {
	var s jobs.Snapshot
	_, err := j.a.do(http.MethodGet, "/delivery/jobs/"+id, nil, &s)
	return s, err
}

func (j jobAPI) Cancel(id string) (jobs.Snapshot, error) {
	var s jobs.Snapshot
	_, err := j.a.do(http.MethodDelete, "/delivery/jobs/"+id, nil, &s)
	return s, err
}
