package query

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/internal/didyoumean"
)

// ParamError is a request parameter that is missing or malformed. Its
// message is meant for the client and starts with the parameter's name.
type ParamError struct {
	Param, Problem string
}

func (e *ParamError) Error() string { return e.Param + " " + e.Problem }

// params reads the parameters an endpoint declares, and only those: reading
// an undeclared one is a programming error. It remembers what was read, so
// that tests can check that every declared parameter is used.
type params struct {
	values   url.Values
	declared []string
	read     map[string]bool
}

func newParams(values url.Values, declared []string) *params {
	return &params{values: values, declared: declared, read: map[string]bool{}}
}

// CheckParams is check for an endpoint that reads its parameters itself:
// an error for a parameter not in declared or given more than once.
func CheckParams(values url.Values, declared []string) error {
	return newParams(values, declared).check()
}

// check refuses parameters the endpoint does not declare, with the declared
// one the client probably meant (a misspelt filter silently ignored would
// answer everything), and parameters given more than once (which one would
// win is a guess). It reports the first in name order, so the answer does
// not depend on map order.
func (p *params) check() error {
	names := make([]string, 0, len(p.values))
	for name := range p.values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(p.declared, name) {
			problem := "is not a parameter of this endpoint"
			if c := didyoumean.Closest(name, p.declared); c != "" {
				problem += "; did you mean " + c + "?"
			} else {
				problem += "; it takes " + strings.Join(p.declared, ", ")
			}
			return &ParamError{name, problem}
		}
		if n := len(p.values[name]); n > 1 {
			return &ParamError{name, fmt.Sprintf("is given %d times; give it once", n)}
		}
	}
	return nil
}

// get returns the first value of name; "" when it is absent or empty, which
// means "not given" (as in Django filters).
func (p *params) get(name string) string {
	if !slices.Contains(p.declared, name) {
		panic("query: parameter " + name + " is read but not declared")
	}
	p.read[name] = true
	return p.values.Get(name)
}

// has reports whether name is present, also with an empty value.
func (p *params) has(name string) bool {
	p.get(name)
	return p.values.Has(name)
}

// positive returns the integer value of name in [1, max], or def when it is
// not given.
func (p *params) positive(name string, def, max int) (int, error) {
	s := p.get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		if max == maxInt {
			return 0, &ParamError{name, fmt.Sprintf("must be a positive integer, got %q", s)}
		}
		return 0, &ParamError{name, fmt.Sprintf("must be an integer from 1 to %d, got %q", max, s)}
	}
	return n, nil
}

const maxInt = int(^uint(0) >> 1)

// timeLayouts are the forms of a time with a time of day, after the date and
// a 'T': with an offset or Z, or without (UTC). Go accepts a fraction of a
// second after the seconds also where a layout has none.
var timeLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04Z0700",
	"2006-01-02T15:04",
}

// timeForms is what the error of a bad time says is accepted.
const timeForms = "a time like 2022-04-11T01:08:01.407119 or 2022-04-11 01:08:01.407119 " +
	"(UTC unless followed by Z or an offset like +02:00), or a date like 2022-04-11"

// ParseTime parses the times The Eye's API accepts: ISO 8601
// (2022-04-11T01:08:01.407119, optionally with Z or an offset, seconds and
// fraction optional), the same with a space instead of the T
// (%Y-%m-%d %H:%M:%S.%f), or a date alone (2022-04-11, its midnight). A time
// without an offset is UTC. dateOnly reports the last form. The error says
// what is out of range, or nothing when s has none of these forms.
//
// A '+' that a client forgot to escape arrives as a space; a space before an
// offset at the end ("01:08:01 02:00") is read as that '+'.
func ParseTime(s string) (t time.Time, dateOnly bool, err error) {
	if len(s) == len(time.DateOnly) {
		t, err := time.Parse(time.DateOnly, s)
		return t, true, timeError(err)
	}
	if len(s) < len("2006-01-02T15:04") || (s[10] != 'T' && s[10] != ' ') {
		return time.Time{}, false, errTimeForm
	}
	b := []byte(s)
	b[10] = 'T'
	if i := strings.LastIndexByte(s, ' '); i > 10 {
		b[i] = '+'
	}
	var outOfRange error
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, string(b))
		if err == nil {
			return t.UTC(), false, nil
		}
		if err := timeError(err); outOfRange == nil && !errors.Is(err, errTimeForm) {
			outOfRange = err
		}
	}
	if outOfRange != nil {
		return time.Time{}, false, outOfRange
	}
	return time.Time{}, false, errTimeForm
}

var errTimeForm = errors.New("unknown form")

// timeError keeps what time.Parse says is out of range (a month 13, a day
// 30 in February) and reduces every other error to errTimeForm.
func timeError(err error) error {
	var pe *time.ParseError
	if errors.As(err, &pe) && strings.HasSuffix(pe.Message, " out of range") {
		return errors.New(strings.TrimPrefix(pe.Message, ": "))
	}
	if err != nil {
		return errTimeForm
	}
	return nil
}

// timeRange reads start_time and end_time. start_time is inclusive;
// end_time is exclusive, except that a date alone as end_time includes that
// whole day.
func (p *params) timeRange() (start, end time.Time, err error) {
	for _, name := range []string{"start_time", "end_time"} {
		s := p.get(name)
		if s == "" {
			continue
		}
		t, dateOnly, err := ParseTime(s)
		if err != nil {
			problem := fmt.Sprintf("must be %s; got %q", timeForms, s)
			if !errors.Is(err, errTimeForm) {
				problem += " (" + err.Error() + ")"
			}
			return time.Time{}, time.Time{}, &ParamError{name, problem}
		}
		if name == "start_time" {
			start = t
		} else if end = t; dateOnly {
			end = t.AddDate(0, 0, 1)
		}
	}
	if !start.IsZero() && !end.IsZero() && start.After(end) {
		return time.Time{}, time.Time{}, &ParamError{"end_time", fmt.Sprintf("must be after start_time (%q is before %q)", p.get("end_time"), p.get("start_time"))}
	}
	return start, end, nil
}
