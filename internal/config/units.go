package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as a Go duration string: "250ms",
// "10s", "1m30s". A bare number is rejected (except 0) because its unit
// would be a guess.
type Duration time.Duration

// ParseDuration parses a duration setting.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write e.g. \"250ms\", \"10s\", \"1m30s\")", s)
	}
	return Duration(d), nil
}

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it is used for
// environment variables.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "expected a duration such as \"10s\"")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return nodeError(n, err.Error())
	}
	*d = v
	return nil
}

// ByteSize is a number of bytes, written as an integer or with a unit:
// "512KiB", "64MiB", "1GiB" (powers of 1024) or "10MB" (powers of 1000).
// Units are case-insensitive; fractions and signs are not accepted.
type ByteSize int64

// Byte size units.
const (
	B   ByteSize = 1
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
	KB  ByteSize = 1000
	MB  ByteSize = 1000 * KB
	GB  ByteSize = 1000 * MB
	TB  ByteSize = 1000 * GB
)

// byteUnits is ordered so that String picks the largest exact binary unit,
// then the largest exact decimal one.
var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", B},
}

// ParseByteSize parses a byte-size setting.
func ParseByteSize(s string) (ByteSize, error) {
	bad := func() (ByteSize, error) {
		return 0, fmt.Errorf("%q is not a byte size (write an integer or e.g. \"512KiB\", \"64MiB\", \"1GiB\", \"10MB\")", s)
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return bad()
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large for a byte size", s)
	}
	unit := strings.TrimSpace(t[i:])
	if unit == "" {
		return ByteSize(n), nil
	}
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/int64(u.size) {
				return 0, fmt.Errorf("%q is too large for a byte size", s)
			}
			return ByteSize(n) * u.size, nil
		}
	}
	return bad()
}

// String writes b with the largest unit that divides it exactly, binary
// units first: 1048576 is "1MiB", 10000000 is "10MB", 1000001 is "1000001B".
// The result parses back to b.
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range byteUnits {
			if b%u.size == 0 {
				return strconv.FormatInt(int64(b/u.size), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it is used for
// environment variables.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "expected a byte size such as 1048576 or \"64MiB\"")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return nodeError(n, err.Error())
	}
	*b = v
	return nil
}

// nodeError returns a *yaml.TypeError, which the decoder collects with the
// other errors of the document instead of stopping at the first.
func nodeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}

// Rate is a number of requests per unit of time, written "20/s", "600/m" or
// "3600/h" (also "1.5/s"); "0" means no limit.
type Rate float64

// ParseRate parses a rate setting.
func ParseRate(s string) (Rate, error) {
	bad := func() (Rate, error) {
		return 0, fmt.Errorf("%q is not a rate (write e.g. \"20/s\", \"600/m\", \"3600/h\", or 0 for no limit)", s)
	}
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	num, unit, ok := strings.Cut(t, "/")
	if !ok {
		return bad()
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) || strings.ContainsAny(num, "eEpPxX_") {
		return bad()
	}
	var per float64
	switch strings.TrimSpace(unit) {
	case "s":
		per = 1
	case "m":
		per = 60
	case "h":
		per = 3600
	default:
		return bad()
	}
	return Rate(n / per), nil
}

// PerSecond returns the rate in requests per second.
func (r Rate) PerSecond() float64 { return float64(r) }

// String writes r in the largest unit that gives a whole number, or per
// second: 20/s, 10/m, 1/h, 0.25/s. The result parses back to r (for rates
// written with at most a few decimals).
func (r Rate) String() string {
	if r == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		per  float64
	}{{"s", 1}, {"m", 60}, {"h", 3600}} {
		n := float64(r) * u.per
		if math.Abs(n-math.Round(n)) < 1e-9*n {
			return strconv.FormatFloat(math.Round(n), 'f', -1, 64) + "/" + u.name
		}
	}
	return strconv.FormatFloat(float64(r), 'f', -1, 64) + "/s"
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it is used for
// environment variables.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "expected a rate such as \"20/s\"")
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return nodeError(n, err.Error())
	}
	*r = v
	return nil
}

// CategoryDurations maps event categories to durations. In YAML it is a
// mapping ({page_interaction: 720h}); in the environment a comma-separated
// list of category=duration (page_interaction=720h,form_interaction=24h).
type CategoryDurations map[string]Duration

// ParseCategoryDurations parses the environment form.
func ParseCategoryDurations(s string) (CategoryDurations, error) {
	out := CategoryDurations{}
	for _, item := range splitList(s) {
		cat, dur, ok := strings.Cut(item, "=")
		cat = strings.TrimSpace(cat)
		if !ok || cat == "" {
			return nil, fmt.Errorf("%q is not category=duration", item)
		}
		if _, dup := out[cat]; dup {
			return nil, fmt.Errorf("category %q is listed twice", cat)
		}
		d, err := ParseDuration(dur)
		if err != nil {
			return nil, fmt.Errorf("category %q: %w", cat, err)
		}
		out[cat] = d
	}
	return out, nil
}

// String writes the environment form, categories sorted.
func (c CategoryDurations) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, k+"="+c[k].String())
	}
	return strings.Join(parts, ",")
}

// MarshalText implements encoding.TextMarshaler.
func (c CategoryDurations) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it is used for
// environment variables.
func (c *CategoryDurations) UnmarshalText(b []byte) error {
	v, err := ParseCategoryDurations(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (c CategoryDurations) MarshalYAML() (any, error) {
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = v.String()
	}
	return out, nil
}

// UnmarshalYAML implements yaml.Unmarshaler: a mapping of category to
// duration.
func (c *CategoryDurations) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return nodeError(n, "expected a mapping of category to duration, such as {page_interaction: 720h}")
	}
	out := CategoryDurations{}
	var msgs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			msgs = append(msgs, fmt.Sprintf("line %d: expected category: duration", k.Line))
			continue
		}
		if _, dup := out[k.Value]; dup {
			msgs = append(msgs, fmt.Sprintf("line %d: category %q is listed twice", k.Line, k.Value))
			continue
		}
		d, err := ParseDuration(v.Value)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("line %d: category %q: %v", v.Line, k.Value, err))
			continue
		}
		out[k.Value] = d
	}
	if len(msgs) > 0 {
		return &yaml.TypeError{Errors: msgs}
	}
	*c = out
	return nil
}
