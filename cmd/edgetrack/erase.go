package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/internal/subject"
)

// Environment variables of `edgetrack erase`. The configuration loader
// leaves EDGETRACK_ADMIN_* alone (internal/config commandVarPrefixes).
const (
	envAdminURL   = "EDGETRACK_ADMIN_URL"
	envAdminToken = "EDGETRACK_ADMIN_TOKEN"
)

// newEraseCmd is `edgetrack erase`: DELETE /v1/subjects on the aggregator's
// admin listener.
func newEraseCmd() *cobra.Command {
	values := map[subject.Kind]*string{}
	flags := map[subject.Kind]string{subject.Session: "session-id", subject.User: "user-id", subject.Device: "device-id", subject.UID: "uid"}
	cmd := &cobra.Command{
		Use:   "erase (--session-id ID | --user-id ID | --device-id ID | --uid UID)",
		Short: "Erase a data subject's events (GDPR art. 17) and drop its later ones",
		Long: `erase asks the aggregator to remove every event of one data subject: its events
leave the store (queries, stats, cookie-sync matches, the export feed), the subject
goes on the suppression list that the aggregator's ingest and every edge drop its
later events by, and an audit record is written (by kind and hash, not the value).
edgetrack sync deletes the events from its targets on its next run.

--session-id and --uid select the events of one session (a uid is the session of
cookie-sync matches); --user-id and --device-id the events whose data has that
field. On the embedded store, erasing a user or device reads the whole store; on
ClickHouse, every erasure rewrites the events table before it answers. If erase
fails part way, run it again: the subject is suppressed already and the rest is
finished.

It talks to the aggregator's admin listener: --admin-url (or ` + envAdminURL + `, default
` + defaultAdminURL + `) with an admin token, --token (or ` + envAdminToken + `).`,
		Example: `  EDGETRACK_ADMIN_TOKEN=... edgetrack erase --session-id 7f3c…
  edgetrack erase --user-id 42 --admin-url https://agg.internal:9091 --token ...`,
		Args: cobra.NoArgs,
	}
	for _, k := range subject.Kinds {
		v := new(string)
		values[k] = v
		cmd.Flags().StringVar(v, flags[k], "", "erase the subject with this "+string(k))
	}
	client := adminClientFlags(cmd, envAdminURL, envAdminToken)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := url.Values{}
		for _, k := range subject.Kinds {
			if cmd.Flags().Changed(flags[k]) {
				q.Set(string(k), *values[k])
			}
		}
		if len(q) != 1 {
			return errors.New("name exactly one subject: --session-id, --user-id, --device-id or --uid")
		}
		c, err := client()
		if err != nil {
			return err
		}
		var res struct {
			Seq     uint64 `json:"seq"`
			Kind    string `json:"kind"`
			Subject string `json:"subject"`
			Erased  int    `json:"erased"`
		}
		if _, err := c.do(cmd.Context(), http.MethodDelete, "/v1/subjects?"+q.Encode(), "", nil, &res); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "erasure %d: %d events of %s %s removed; its later events are dropped\n", res.Seq, res.Erased, res.Kind, res.Subject)
		return nil
	}
	return cmd
}
