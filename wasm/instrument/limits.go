package instrument

import (
	"errors"
	"fmt"
	"reflect"
)

// Limits bound what a module may declare, so that nothing downstream of
// Instrument — wazero's decoder, validator and compiler — is handed a
// module whose cost has no bound. Each is checked while the module is read,
// before anything is allocated in proportion to a number the module
// declares. The defaults leave the shipped rules a wide margin (see
// TestShippedRulesFitTheLimits) and keep the worst module within them to a
// compile of about a second and tens of megabytes (BenchmarkWorstModule,
// docs/ABI.md).
type Limits struct {
	ModuleBytes   int // the whole binary
	Sections      int // sections of any kind, custom ones included
	Types         int // entries of the type section
	Imports       int
	Functions     int // functions the module defines
	Globals       int
	Exports       int
	Tables        int
	ElemSegments  int
	DataSegments  int
	FunctionBytes int // the body of one function
	Locals        int // locals of one function, all declarations together
	LocalsTotal   int // locals of all functions of the module
	Nesting       int // blocks, loops and ifs open at once in one function
	Blocks        int // blocks, loops and ifs of one function
	BlockWork     int // the sum over functions of Blocks squared, in thousands
	BrTable       int // targets of one br_table
	BrTableTotal  int // targets of all br_tables of the module
	TableEntries  int // the maximum size of one table
}

// DefaultLimits are the limits the host applies unless told otherwise.
var DefaultLimits = Limits{
	ModuleBytes:   8 << 20,
	Sections:      256,
	Types:         10_000,
	Imports:       1_000,
	Functions:     100_000,
	Globals:       10_000,
	Exports:       10_000,
	Tables:        16,
	ElemSegments:  10_000,
	DataSegments:  100_000,
	FunctionBytes: 1 << 20,
	Locals:        50_000,
	LocalsTotal:   1_000_000,
	Nesting:       512,
	Blocks:        10_000,
	BlockWork:     100_000,
	BrTable:       16_384,
	BrTableTotal:  65_536,
	TableEntries:  1 << 20,
}

// ErrLimit is matched by every *LimitError.
var ErrLimit = errors.New("instrument: module exceeds a limit")

// LimitError says which limit a module exceeds, by how much, and where.
type LimitError struct {
	Limit string // the name of the limit, as in docs/ABI.md: "locals per function"
	Got   uint64 // what the module declares (or the least it would need)
	Max   int
	Where string // e.g. "function 12"; "" for the module as a whole
}

func (e *LimitError) Error() string {
	where := ""
	if e.Where != "" {
		where = e.Where + ": "
	}
	return fmt.Sprintf("%s%s: %d, over the limit of %d", where, e.Limit, e.Got, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true for every LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// over returns a LimitError when got exceeds max.
func over(limit string, got uint64, max int, where string) error {
	if got > uint64(max) {
		return &LimitError{Limit: limit, Got: got, Max: max, Where: where}
	}
	return nil
}

// withDefaults fills the zero fields of l from DefaultLimits. Every field
// of Limits is an int limit, so they are filled by reflection rather than
// listed again here.
func (l Limits) withDefaults() Limits {
	v, d := reflect.ValueOf(&l).Elem(), reflect.ValueOf(DefaultLimits)
	for i := range v.NumField() {
		if v.Field(i).Int() <= 0 {
			v.Field(i).SetInt(d.Field(i).Int())
		}
	}
	return l
}

// sectionEntries checks the number of entries a section declares, before
// any of them is read.
func (l Limits) sectionEntries(id byte, body []byte) error {
	var limit string
	var max int
	switch id {
	case secType:
		limit, max = "entries of the type section", l.Types
	case secImport:
		limit, max = "imports", l.Imports
	case secFunction, secCode:
		limit, max = "functions", l.Functions
	case secTable:
		limit, max = "tables", l.Tables
	case secGlobal:
		limit, max = "globals", l.Globals
	case secExport:
		limit, max = "exports", l.Exports
	case secElement:
		limit, max = "element segments", l.ElemSegments
	case secData:
		limit, max = "data segments", l.DataSegments
	default:
		return nil
	}
	r := reader{b: body}
	n := r.leb(32)
	if r.err != nil {
		return fmt.Errorf("%s section: %w", sectionName(id), r.err)
	}
	return over(limit, n, max, "")
}
