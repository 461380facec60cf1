// Package abi is the contract between the edge (host) and a rule (guest).
//
// It defines the values that cross the boundary — Config once per instance,
// Request and Verdict once per call — and their encoding, which is protobuf
// as declared in proto/rulepb/rule.proto. The codec here is hand-written on
// protowire so that TinyGo guests, which cannot use generated protobuf code,
// and the host share one implementation; a test checks it against the
// generated code field by field.
//
// The call sequence and the host functions are described in docs/ABI.md.
package abi

// Version is the ABI version this package speaks. A guest reports its version
// through the edgetrack_abi_version export; the host refuses any other.
const Version = 1

// Export and import names of ABI version 1.
const (
	ExportVersion   = "edgetrack_abi_version"
	ExportReserve   = "edgetrack_reserve"
	ExportConfigure = "edgetrack_configure"
	ExportHandle    = "edgetrack_handle"
	ExportInit      = "_initialize"
	ExportMemory    = "memory"

	HostModule = "edgetrack"
)

// Source values of Event.Source, as in proto/eventpb.
const (
	SourceUnspecified int32 = 0
	SourceHamustro    int32 = 1
	SourceEye         int32 = 2
	SourceCookieSync  int32 = 3
)

// Header is one HTTP header; names are lower case.
type Header struct {
	Name, Value string
}

// Setting is one named configuration value or list.
type Setting struct {
	Key    string
	Values []string
}

// Config is handed to a rule once per instance, before any request.
type Config struct {
	ABIVersion uint32
	Rule       string
	Settings   []Setting
}

// Values returns the values of setting key, or nil.
func (c *Config) Values(key string) []string {
	for i := range c.Settings {
		if c.Settings[i].Key == key {
			return c.Settings[i].Values
		}
	}
	return nil
}

// Value returns the first value of setting key, or "".
func (c *Config) Value(key string) string {
	if v := c.Values(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Request is one HTTP request as a rule sees it.
type Request struct {
	Method     string
	Path       string
	Query      string // raw, without '?'
	Headers    []Header
	Body       []byte
	RemoteIP   string // client address after trusted-proxy resolution
	ReceivedAt int64  // unix nanoseconds
}

// Header returns the first value of the header with the given lower-case
// name, and whether it was present.
func (r *Request) Header(name string) (string, bool) {
	for i := range r.Headers {
		if r.Headers[i].Name == name {
			return r.Headers[i].Value, true
		}
	}
	return "", false
}

// Cookie is a Set-Cookie the rule asks for.
type Cookie struct {
	Name, Value string
	MaxAge      int64 // seconds; 0 = session cookie; < 0 deletes
	Path        string
	Domain      string
	Secure      bool
	HTTPOnly    bool
	SameSite    string // "", "lax", "strict" or "none"
}

// Event is one accepted event, as in proto/eventpb.Event.
type Event struct {
	ID         string
	Source     int32
	ReceivedAt int64
	ClientTime int64
	Session    string
	Category   string
	Name       string
	Data       []byte // JSON object
	IP         string
	Edge       string
	Rule       string
}

// Verdict is a rule's decision on a request.
type Verdict struct {
	Status   uint32
	Message  string
	Headers  []Header
	Body     []byte
	Location string
	Cookies  []Cookie
	Events   []Event
}

// Host is what the host offers a rule beyond plain computation. On the edge it
// is backed by host functions (much faster than computing in the guest); under
// `go test` by Go's own crypto (see wasm/guest.Native).
type Host interface {
	SHA256(data []byte) [32]byte
	MD5(data []byte) [16]byte
	HMACSHA256(key, data []byte) [32]byte
	// Base64 is standard encoding with padding.
	Base64(src []byte) string
	Base64Decode(s string) ([]byte, bool)
	// ConstantTimeEqual compares without leaking where a and b differ.
	ConstantTimeEqual(a, b []byte) bool
	// Random fills b with cryptographically random bytes.
	Random(b []byte)
}

// Rule decides on requests. A Rule serves one call at a time (each wasm
// instance has its own). Handle must not keep req or anything in it after it
// returns: the host reuses that memory. The Verdict may reference req and the
// rule's own buffers, so it is valid only until req changes or Handle is
// called again; the guest SDK encodes it before either happens. Rules that
// avoid allocating per event run much faster under TinyGo, whose allocator
// and collector degrade with many small objects.
type Rule interface {
	Handle(req *Request) Verdict
}

// Factory builds a rule from its configuration; an error stops the instance
// from starting and is reported to the operator.
type Factory func(cfg *Config, host Host) (Rule, error)
