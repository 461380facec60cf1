package client

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TrackPath is the collector path events are posted to.
const TrackPath = "/api/v1/track"

// Defaults applied by [New] to zero-valued [Config] fields.
const (
	DefaultQueueSize             = 20
	DefaultQueueRetention        = 24 * time.Hour // the seed's 1440 minutes
	DefaultHTTPTimeout           = 10 * time.Second
	DefaultBackoffMin            = time.Second
	DefaultBackoffMax            = 5 * time.Minute
	DefaultMaxPayloadsPerRequest = 1000
)

// Config describes a tracker. The first group of fields are the seed's
// ClientTracker attributes; the rest are how this SDK stores and sends.
// Zero values get the documented defaults.
type Config struct {
	// CollectorURL is the collector's base URL, e.g. "https://edge.example.com".
	// Events are posted to CollectorURL + "/api/v1/track"; a URL that already
	// ends in that path is used as it is. Required; http or https.
	CollectorURL string
	// SharedSecret signs every request (X-Hamustro-Signature). Required.
	SharedSecret string
	// DeviceID is the raw device id. Required. It is sent only as
	// sha256hex(DeviceID) and enters the session the same way.
	DeviceID string
	// ClientID, SystemVersion and ProductVersion identify the app build.
	// All three are required; together with DeviceID they define the session.
	ClientID       string
	SystemVersion  string
	ProductVersion string
	// System and ProductGitHash are optional and sent as they are.
	System         string
	ProductGitHash string

	// QueueSize: a send is triggered when at least this many events are
	// unsent. Default 20. Smaller values send sooner and cost more requests.
	QueueSize int
	// QueueRetention: a send is triggered when the last successful send is
	// older than this. Default 24h (the seed's 1440 minutes).
	QueueRetention time.Duration

	// Dir is the directory of the tracker's Pebble store. Required. One
	// Tracker per directory at a time (Pebble locks it); it may hold events
	// of earlier sessions, which are sent with their own attributes.
	Dir string
	// HTTPClient sends the requests. Default: an http.Client with a 10s
	// timeout. Its timeout bounds one request; there is no retry inside a
	// send round, failed events wait for the next trigger or Flush.
	HTTPClient *http.Client
	// Clock returns the current time: event "at", X-Hamustro-Time, the
	// retention and backoff decisions. Default time.Now. Inject it in tests.
	Clock func() time.Time
	// IP is the app's own address, sent in each event's ip field when not
	// empty. It can be changed later with [Tracker.SetIP].
	IP string
	// BackoffMin and BackoffMax bound the pause after a failed send, during
	// which TrackEvent triggers do not send (Flush still does). The pause
	// doubles per consecutive failure from BackoffMin up to BackoffMax, with
	// jitter. Defaults 1s and 5m.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// MaxPayloadsPerRequest caps the payloads in one POST; a session with
	// more unsent events is sent in several requests. Default 1000.
	MaxPayloadsPerRequest int
	// Logger receives send failures (Warn) and storage messages (Debug).
	// Default: discard.
	Logger *slog.Logger

	// fs replaces the operating system's file system; tests use Pebble's
	// in-memory and crashable file systems.
	fs vfs.FS
}

// Validate reports every problem of the configuration at once, each prefixed
// with the field it is about. It does not apply defaults; zero values of
// optional fields are valid.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("client: config: %s: "+format, append([]any{field}, args...)...))
	}
	if c.CollectorURL == "" {
		add("CollectorURL", "required")
	} else if _, err := trackEndpoint(c.CollectorURL); err != nil {
		add("CollectorURL", "%v", err)
	}
	for _, f := range []struct{ name, value string }{
		{"SharedSecret", c.SharedSecret},
		{"DeviceID", c.DeviceID},
		{"ClientID", c.ClientID},
		{"SystemVersion", c.SystemVersion},
		{"ProductVersion", c.ProductVersion},
		{"Dir", c.Dir},
	} {
		if f.value == "" {
			add(f.name, "required")
		}
	}
	if c.QueueSize < 0 {
		add("QueueSize", "must not be negative, got %d", c.QueueSize)
	}
	if c.QueueRetention < 0 {
		add("QueueRetention", "must not be negative, got %v", c.QueueRetention)
	}
	if c.BackoffMin < 0 {
		add("BackoffMin", "must not be negative, got %v", c.BackoffMin)
	}
	if c.BackoffMax < 0 {
		add("BackoffMax", "must not be negative, got %v", c.BackoffMax)
	}
	if c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax {
		add("BackoffMin", "%v is larger than BackoffMax %v", c.BackoffMin, c.BackoffMax)
	}
	if c.MaxPayloadsPerRequest < 0 {
		add("MaxPayloadsPerRequest", "must not be negative, got %d", c.MaxPayloadsPerRequest)
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with defaults for zero-valued fields.
func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueRetention == 0 {
		c.QueueRetention = DefaultQueueRetention
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
		if c.BackoffMax > 0 {
			c.BackoffMin = min(c.BackoffMin, c.BackoffMax)
		}
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.MaxPayloadsPerRequest == 0 {
		c.MaxPayloadsPerRequest = DefaultMaxPayloadsPerRequest
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.fs == nil {
		c.fs = vfs.Default
	}
	return c
}

// trackEndpoint turns a collector base URL into the track URL.
func trackEndpoint(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	if p := strings.TrimRight(u.Path, "/"); strings.HasSuffix(p, TrackPath) {
		u.Path, u.RawPath = p, ""
		return u.String(), nil
	}
	return u.JoinPath(TrackPath).String(), nil
}
