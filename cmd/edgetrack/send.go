package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/client"
)

// sendLine is one event of `edgetrack send`, from flags or a stdin line.
type sendLine struct {
	Event     string `json:"event"`
	UserID    uint32 `json:"user_id"`
	Params    string `json:"params"`
	IsTesting bool   `json:"is_testing"`
}

// newSendCmd is `edgetrack send`: track events with the client SDK and
// flush them to a collector.
func newSendCmd() *cobra.Command {
	var (
		cfg       client.Config
		events    []string
		userID    uint32
		params    string
		isTesting bool
	)
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send events to a collector with the Hamustro client protocol",
		Long: `Send tracks events through the Go client SDK and flushes them to the collector.

Events come from --event (repeatable; --user-id, --params and --testing apply to
each), or, without --event, from stdin as JSON lines:

  {"event": "purchase", "user_id": 1, "params": "{\"sku\":\"A1\"}", "is_testing": false}

Only "event" is required; unknown fields are an error. Input is checked as a whole
before anything is tracked, so a bad line sends nothing.

Events are stored in --dir before sending, like in an app. Events that could not be
sent stay there and go out with the next run that uses the same directory and
succeeds. The command prints how many events the collector acknowledged and fails
with the collector's status and body if it did not answer 200.`,
		Example: `  edgetrack send --url http://127.0.0.1:8080 --secret s3cret \
    --device-id dev-1 --client-id cli --system-version 1 --product-version 1 \
    --event app_open --event purchase --user-id 42

  printf '{"event":"app_open"}\n{"event":"purchase","user_id":42}\n' |
    EDGETRACK_SEND_URL=http://127.0.0.1:8080 EDGETRACK_SEND_SECRET=s3cret \
    edgetrack send --device-id dev-1 --client-id cli --system-version 1 --product-version 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			if cfg.CollectorURL == "" {
				cfg.CollectorURL = os.Getenv("EDGETRACK_SEND_URL")
			}
			if cfg.SharedSecret == "" {
				cfg.SharedSecret = os.Getenv("EDGETRACK_SEND_SECRET")
			}
			var missing []string
			for _, req := range []struct{ value, name string }{
				{cfg.CollectorURL, "--url (or EDGETRACK_SEND_URL)"},
				{cfg.SharedSecret, "--secret (or EDGETRACK_SEND_SECRET)"},
				{cfg.DeviceID, "--device-id"},
				{cfg.ClientID, "--client-id"},
				{cfg.SystemVersion, "--system-version"},
				{cfg.ProductVersion, "--product-version"},
			} {
				if req.value == "" {
					missing = append(missing, req.name)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("send: missing %s", strings.Join(missing, ", "))
			}

			var lines []sendLine
			if len(events) > 0 {
				for i, name := range events {
					if name == "" || !utf8.ValidString(name) {
						return fmt.Errorf("send: --event %d: empty or not UTF-8", i+1)
					}
					lines = append(lines, sendLine{Event: name, UserID: userID, Params: params, IsTesting: isTesting})
				}
				if !utf8.ValidString(params) {
					return errors.New("send: --params is not UTF-8")
				}
			} else {
				if flags.Changed("user-id") || flags.Changed("params") || flags.Changed("testing") {
					return errors.New("send: --user-id, --params and --testing apply to --event; on stdin put them in each line")
				}
				var err error
				if lines, err = sendReadLines(cmd.InOrStdin()); err != nil {
					return err
				}
			}

			if cfg.Dir == "" {
				cache, err := os.UserCacheDir()
				if err != nil {
					return fmt.Errorf("send: no --dir given and no user cache directory: %w", err)
				}
				cfg.Dir = filepath.Join(cache, "edgetrack", "send")
			}
			// No background sends: everything goes out in the one Flush below,
			// so the result printed is the result of this run.
			cfg.QueueSize = math.MaxInt
			cfg.QueueRetention = 100 * 365 * 24 * time.Hour
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))

			tr, err := client.New(cfg)
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			closed := false
			defer func() {
				if !closed {
					tr.Close()
				}
			}()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			for i, l := range lines {
				if err := tr.TrackEvent(ctx, l.Event, l.UserID, l.Params, l.IsTesting); err != nil {
					return fmt.Errorf("send: track event %d of %d (events before it stay queued in %s): %w", i+1, len(lines), cfg.Dir, err)
				}
			}
			flushErr := tr.Flush(ctx)
			st := tr.Stats()
			closed = true
			closeErr := tr.Close()
			if flushErr != nil {
				return fmt.Errorf("send: %d events sent, %d still queued in %s: %w", st.Sent, st.Pending, cfg.Dir, flushErr)
			}
			noun := "events"
			if st.Sent == 1 {
				noun = "event"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent %d %s\n", st.Sent, noun)
			if closeErr != nil {
				return fmt.Errorf("send: %w", closeErr)
			}
			return nil
		},
	}

	f := cmd.Flags()
	f.StringVar(&cfg.CollectorURL, "url", "", "collector base URL; events are posted to URL/api/v1/track (env EDGETRACK_SEND_URL)")
	f.StringVar(&cfg.SharedSecret, "secret", "", "shared secret that signs the requests (env EDGETRACK_SEND_SECRET)")
	f.StringVar(&cfg.DeviceID, "device-id", "", "device id; sent as its sha256 hex (required)")
	f.StringVar(&cfg.ClientID, "client-id", "", "client id (required)")
	f.StringVar(&cfg.SystemVersion, "system-version", "", "system version (required)")
	f.StringVar(&cfg.ProductVersion, "product-version", "", "product version (required)")
	f.StringVar(&cfg.System, "system", "", "system name")
	f.StringVar(&cfg.ProductGitHash, "product-git-hash", "", "product git hash")
	f.StringVar(&cfg.Dir, "dir", "", "SDK storage directory (default <user cache dir>/edgetrack/send)")
	f.StringArrayVar(&events, "event", nil, "event name to send; repeat for several (without it, JSON lines are read from stdin)")
	f.Uint32Var(&userID, "user-id", 0, "user id of the --event events (0: none)")
	f.StringVar(&params, "params", "", "parameters of the --event events, usually JSON")
	f.BoolVar(&isTesting, "testing", false, "mark the --event events as testing")
	return cmd
}

// sendReadLines parses JSON-lines events. Blank lines are skipped; any bad
// line is an error naming its line number, and nothing is returned.
func sendReadLines(r io.Reader) ([]sendLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var (
		out []sendLine
		n   int
	)
	for sc.Scan() {
		n++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var l sendLine
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("send: stdin line %d: %w", n, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("send: stdin line %d: more than one JSON value", n)
		}
		if l.Event == "" {
			return nil, fmt.Errorf(`send: stdin line %d: "event" is missing or empty`, n)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("send: stdin line %d: %w", n+1, err)
	}
	return out, nil
}
