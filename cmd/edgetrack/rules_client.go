package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// rulesClient talks to the registry on the aggregator's admin listener.
type rulesClient struct {
	url, token string
	http       *http.Client
}

// rulesClientFlags adds --admin-url and --token to cmd and returns a function
// that makes the client from them (or EDGETRACK_RULES_URL, _TOKEN).
func rulesClientFlags(cmd *cobra.Command) func() (*rulesClient, error) {
	return adminClientFlags(cmd, envRulesURL, envRulesToken)
}

// adminClientFlags adds --admin-url and --token to cmd, defaulting to the
// environment variables envURL and envToken, and returns a function that
// makes a client of the aggregator's admin listener from them.
func adminClientFlags(cmd *cobra.Command, envURL, envToken string) func() (*rulesClient, error) {
	var u, token string
	cmd.Flags().StringVar(&u, "admin-url", "", "the aggregator's admin listener (default $"+envURL+" or "+defaultAdminURL+")")
	cmd.Flags().StringVar(&token, "token", "", "an admin token (aggregator.tokens.admin; default $"+envToken+")")
	return func() (*rulesClient, error) {
		if u == "" {
			u = os.Getenv(envURL)
		}
		if u == "" {
			u = defaultAdminURL
		}
		if token == "" {
			token = os.Getenv(envToken)
		}
		if token == "" {
			return nil, fmt.Errorf("no admin token: pass --token or set %s", envToken)
		}
		if _, err := url.ParseRequestURI(u); err != nil {
			return nil, fmt.Errorf("--admin-url %q: %w", u, err)
		}
		// Uploads are validated before the answer, and an erasure of a
		// user or device reads the whole store: allow for it.
		return &rulesClient{url: strings.TrimRight(u, "/"), token: token, http: &http.Client{Timeout: 30 * time.Minute}}, nil
	}
}

// withRulesClient adds --admin-url and --token to cmd (see rulesClientFlags)
// and makes its RunE run, with the client they make.
func withRulesClient(cmd *cobra.Command, run func(cmd *cobra.Command, c *rulesClient, args []string) error) {
	client := rulesClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		return run(cmd, c, args)
	}
}

// do sends a request and decodes a 2xx JSON answer into out (when not
// nil). Other answers become an error with the server's message.
func (c *rulesClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
