package registry

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// index is index.json.
type index struct {
	// Version is the manifest version.
	Version int64                 `json:"version"`
	Rules   map[string]*ruleIndex `json:"rules"`
}

type ruleIndex struct {
	// Active is the active version's hash, or ruleapi.Builtin.
	Active   string            `json:"active"`
	Versions []ruleapi.Version `json:"versions"`
}

func (ri *ruleIndex) find(hash string) (ruleapi.Version, bool) {
	for _, v := range ri.Versions {
		if v.Hash == hash {
			return v, true
		}
	}
	return ruleapi.Version{}, false
}

// load reads index.json and edges.json and replays audit.log.
func (r *Registry) load() error {
	if err := readJSONFile(r.dir, "index.json", &r.idx); err != nil {
		return err
	}
	if r.idx.Rules == nil {
		r.idx.Rules = map[string]*ruleIndex{}
	}
	if err := readJSONFile(r.dir, "edges.json", &r.edges); err != nil {
		return err
	}
	if r.edges == nil {
		r.edges = map[string]*edgeReport{}
	}
	log, entries, err := openAudit(filepath.Join(r.dir, "audit.log"))
	if err != nil {
		return err
	}
	r.audit = log

	// Replay activations: the log wins over the index.
	active := map[string]string{}
	var version int64 = 1
	for _, e := range entries {
		switch e.Action {
		case ActionActivate:
			r.history[e.Rule] = append(r.history[e.Rule], e.Previous)
		case ActionRollback:
			if h := r.history[e.Rule]; len(h) > 0 {
				r.history[e.Rule] = h[:len(h)-1]
			}
		default:
			continue
		}
		active[e.Rule] = e.Hash
		version++
	}
	dirty := r.idx.Version != version
	r.idx.Version = version
	for _, name := range r.names {
		ri := r.rule(name)
		want, ok := active[name]
		if !ok {
			want = ruleapi.Builtin
		}
		if ri.Active == "" {
			ri.Active = ruleapi.Builtin
		}
		if ri.Active != want {
			r.log.Warn("index.json disagrees with the audit log about the active version; the log wins",
				"rule", name, "index", short(ri.Active), "audit", short(want))
			ri.Active, dirty = want, true
		}
		if want == ruleapi.Builtin {
			continue
		}
		if _, ok := ri.find(want); !ok {
			// The index lost the version (a crash before its write, or
			// an index restored from a backup): rebuild its entry from
			// the module file.
			fi, err := os.Stat(r.modulePath(want))
			if err != nil {
				return fmt.Errorf("registry: rule %s: the active version %s is not on disk: %w", name, short(want), err)
			}
			ri.Versions = append(ri.Versions, ruleapi.Version{Hash: want, Size: int(fi.Size()), UploadedAt: fi.ModTime().UTC(), UploadedBy: "unknown"})
			dirty = true
		}
	}
	if dirty {
		return r.writeIndex()
	}
	return nil
}

// rule returns the index entry of name, creating it. Callers hold mu (or
// own r, during Open).
func (r *Registry) rule(name string) *ruleIndex {
	ri := r.idx.Rules[name]
	if ri == nil {
		ri = &ruleIndex{Active: ruleapi.Builtin}
		r.idx.Rules[name] = ri
	}
	return ri
}

func (r *Registry) writeIndex() error { return writeJSONFile(r.dir, "index.json", &r.idx) }

func (r *Registry) modulePath(hash string) string {
	return filepath.Join(r.dir, "modules", hash+".wasm")
}
