package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/joho/godotenv"
	"gopkg.in/yaml.v3"
)

// Load returns Default() overlaid with the YAML file at path (none when path
// is "") and then with the EDGETRACK_ variables in environ, a list of
// "KEY=value" strings in which a later entry wins over an earlier one.
// Pass the result of [Environ] to honour .env files; Load itself reads no
// environment. Load does not validate; see [Config.Validate].
//
// Every unknown YAML key, unknown EDGETRACK_ variable and unparsable value is
// reported, one per line.
func Load(path string, environ []string) (*Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := decodeYAML(cfg, path, data); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(cfg, environ); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeYAML overlays the YAML document data onto cfg. name prefixes errors.
func decodeYAML(cfg *Config, name string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil // empty file or only comments: defaults
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: line %d: expected a mapping of settings at the top level", name, root.Line)
	}

	// Walk the tree first so an unknown key is reported with its full path
	// (the decoder would only name the key and a Go type), all at once.
	w := keyWalker{leafLines: map[int]string{}}
	w.walk(root, reflect.TypeFor[Config](), "")
	if len(w.msgs) > 0 {
		return linesError(name, w.msgs)
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // backstop for anything the walk missed
	if err := dec.Decode(cfg); err != nil {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = w.withPath(m)
			}
			return linesError(name, msgs)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: more than one YAML document; edgetrack reads one", name)
	}
	return nil
}

func linesError(name string, msgs []string) error {
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = fmt.Errorf("%s: %s", name, m)
	}
	return errors.Join(errs...)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// keyWalker checks a YAML tree against the Config type before decoding.
type keyWalker struct {
	msgs []string
	// leafLines maps the line of a setting's value to its path, to name the
	// setting in the decoder's "line N: ..." errors; "" when a line holds
	// several settings.
	leafLines map[int]string
}

// walk reports every key of n that is not a setting or section of t, and
// every section written as null: the decoder would silently reset a null
// section to zero values instead of leaving its defaults.
func (w *keyWalker) walk(n *yaml.Node, t reflect.Type, prefix string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) && prefix != "" {
		w.msgs = append(w.msgs, fmt.Sprintf("line %d: %s: empty section; remove it or give it settings", n.Line, prefix))
		return
	}
	if n.Kind != yaml.MappingNode {
		return // a type mismatch, which the decoder reports
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					w.walk(m, t, prefix)
				}
			} else {
				w.walk(v, t, prefix)
			}
			continue
		}
		path := joinPath(prefix, k.Value)
		f, ok := fieldByYAMLName(t, k.Value)
		if !ok {
			var names []string
			for i := range t.NumField() {
				names = append(names, joinPath(prefix, yamlName(t.Field(i))))
			}
			w.msgs = append(w.msgs, fmt.Sprintf("line %d: unknown setting %q%s", k.Line, path, suggest(path, names)))
			continue
		}
		if isSection(f.Type) {
			w.walk(v, f.Type, path)
			continue
		}
		if _, seen := w.leafLines[v.Line]; seen {
			w.leafLines[v.Line] = ""
		} else {
			w.leafLines[v.Line] = path
		}
	}
}

// withPath turns the decoder's "line N: problem" into
// "line N: path: problem" when line N holds one setting.
func (w *keyWalker) withPath(msg string) string {
	var line int
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil {
		return msg
	}
	if path := w.leafLines[line]; path != "" {
		head, rest, _ := strings.Cut(msg, ": ")
		return head + ": " + path + ": " + rest
	}
	return msg
}

// applyEnv sets every setting named by an EDGETRACK_ variable in environ.
func applyEnv(cfg *Config, environ []string) error {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) && !isCommandVar(k) {
			vars[k] = v // a later entry wins, as in os/exec
		}
	}
	table := settings()
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		s, ok := table.byEnv[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no such setting%s", k, suggest(k, table.envNames())))
			continue
		}
		field := reflect.ValueOf(cfg).Elem().FieldByIndex(s.index)
		if err := setFromString(field, vars[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", k, s.path, err))
		}
	}
	return errors.Join(errs...)
}

// setFromString sets a leaf from its environment form. Lists are
// comma-separated; items are trimmed and empty items dropped.
func setFromString(v reflect.Value, raw string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", raw)
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, strconv.IntSize)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		v.SetInt(n)
	case reflect.Slice:
		v.Set(reflect.ValueOf(splitList(raw)))
	default:
		panic("config: unhandled setting kind " + v.Kind().String()) // isLeaf rules this out
	}
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// LoadDotEnv reads .env and then .env.local from dir, when present, and
// returns their variables merged, .env.local winning. It does not touch the
// process environment.
func LoadDotEnv(dir string) (map[string]string, error) {
	merged := map[string]string{}
	for _, name := range []string{".env", ".env.local"} {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		vars, err := godotenv.UnmarshalBytes(data)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		maps.Copy(merged, vars)
	}
	return merged, nil
}

// Environ returns the environment Load should see: the .env files in dir
// (see [LoadDotEnv]) overlaid with process, usually os.Environ(). The result
// has one entry per variable, sorted.
func Environ(dir string, process []string) ([]string, error) {
	merged, err := LoadDotEnv(dir)
	if err != nil {
		return nil, err
	}
	for _, kv := range process {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			merged[k] = v
		}
	}
	out := make([]string, 0, len(merged))
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		out = append(out, k+"="+merged[k])
	}
	return out, nil
}

// commandVarPrefixes are EDGETRACK_ variables that belong to a command's own
// flags (e.g. EDGETRACK_SEND_URL for `edgetrack send`, EDGETRACK_RULES_TOKEN
// for `edgetrack rules`, EDGETRACK_ADMIN_TOKEN for `edgetrack erase`) or to
// the test suite (EDGETRACK_TEST_REQUIRE_SERVERS),
// not to this file's settings; they are left alone rather than reported as
// unknown settings.
var commandVarPrefixes = []string{EnvPrefix + "SEND_", EnvPrefix + "RULES_", EnvPrefix + "ADMIN_", EnvPrefix + "TEST_"}

func isCommandVar(k string) bool {
	for _, p := range commandVarPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}
