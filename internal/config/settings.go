package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/edgetrack/edgetrack/internal/didyoumean"
)

// EnvPrefix starts every environment variable that sets a setting.
const EnvPrefix = "EDGETRACK_"

// setting is one leaf of Config: a value that can be set from YAML or from
// one environment variable.
type setting struct {
	path  string // dotted YAML path, e.g. "edge.hamustro.max_clock_skew"
	env   string // EnvName(path)
	index []int  // reflect field index from Config
}

type settingTable struct {
	list  []setting // in declaration order
	byEnv map[string]*setting
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// settings is computed once from Config's yaml tags and never changed.
var settings = sync.OnceValue(func() *settingTable {
	t := &settingTable{byEnv: map[string]*setting{}}
	t.list = collectSettings(reflect.TypeFor[Config](), "", nil)
	for i := range t.list {
		s := &t.list[i]
		if other, dup := t.byEnv[s.env]; dup {
			panic(fmt.Sprintf("config: %s and %s share the environment variable %s", other.path, s.path, s.env))
		}
		t.byEnv[s.env] = s
	}
	return t
})

func (t *settingTable) envNames() []string {
	out := make([]string, len(t.list))
	for i, s := range t.list {
		out[i] = s.env
	}
	return out
}

func collectSettings(t reflect.Type, prefix string, index []int) []setting {
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		path := joinPath(prefix, name)
		idx := append(slices.Clone(index), i)
		if isSection(f.Type) {
			out = append(out, collectSettings(f.Type, path, idx)...)
			continue
		}
		if !isLeaf(f.Type) {
			panic(fmt.Sprintf("config: %s has type %s, which cannot be set from the environment", path, f.Type))
		}
		out = append(out, setting{path: path, env: EnvName(path), index: idx})
	}
	return out
}

// yamlName returns the YAML key of a Config field. Every field must have one:
// the keys are the public names of settings and must not be derived by the
// YAML library's lower-casing rule.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" || name == "-" || !f.IsExported() {
		panic(fmt.Sprintf("config: field %s needs a yaml tag", f.Name))
	}
	return name
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType)
}

func isLeaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// fieldByYAMLName finds the field of struct type t whose YAML key is name.
func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// EnvName returns the environment variable that overrides the setting at
// path: EDGETRACK_ followed by the path in upper case with "_" for ".".
// edge.aggregator_url is EDGETRACK_EDGE_AGGREGATOR_URL.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Paths returns the dotted path of every setting, in the order they are
// declared in Config.
func Paths() []string {
	list := settings().list
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.path
	}
	return out
}

func suggest(s string, candidates []string) string {
	if c := didyoumean.Closest(s, candidates); c != "" {
		return fmt.Sprintf(" (did you mean %s?)", c)
	}
	return ""
}
