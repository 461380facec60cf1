package main

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/wasm/dist"
)

// newRulesNewCmd is `edgetrack rules new`: a rule package from a template
// (see newScaffold).
func newRulesNewCmd() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "new <dir>",
		Short: "Scaffold a rule package: main.go, rule.go, rule_test.go, vectors.json, README.md",
		Long: `new writes a rule package into <dir>, which must be inside this repository
(e.g. ./myrules/scroll): the package has no go.mod of its own and builds with the
repository's, so the guest SDK it uses is the one the edges and the registry speak.

--kind <a built-in rule> starts rule.go from a copy of that built-in
rule (wasm/rules/<kind>) and make rule_test.go run the route's built-in vectors;
blank is a small rule to start from scratch.`,
		Example: `  edgetrack rules new ./myrules/scroll --kind eye
  go test ./myrules/scroll`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, notes, err := newScaffold(args[0], kind)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, n := range notes {
				fmt.Fprintln(out, "note:", n)
			}
			for _, f := range files {
				fmt.Fprintln(out, "created", f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "blank", "template: "+strings.Join(ruleKinds, ", "))
	return cmd
}

// edgetrackModule is the module a rule scaffold must live in: it builds with the
// repository's go.mod, so the SDK and the host are at the same version.
const edgetrackModule = "github.com/edgetrack/edgetrack"

// ruleKinds are the templates of `rules new`: blank and the built-in rules
// of wasm/dist's table. Every kind but blank starts from a copy of the
// built-in rule in wasm/rules/<kind>.
var ruleKinds = append([]string{"blank"}, dist.Names()...)

//go:embed ruletemplate
var ruleTemplates embed.FS

// ruleScaffold is what the templates see.
type ruleScaffold struct {
	Name   string // the directory's base name
	Dir    string // slash path from the module root, e.g. myrules/scroll
	Kind   string // the kind scaffolded (blank when a copy was not possible)
	Route  string // the rule to push it as; "" for blank
	Source string // e.g. wasm/rules/eye when rule.go is a copy
}

// moduleRoot returns the directory of the go.mod that dir (which need not
// exist yet) belongs to, and its module path.
func goModuleRoot(dir string) (root, module string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return d, strings.Trim(strings.TrimSpace(m), `"`), nil
				}
			}
			return d, "", nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		if filepath.Dir(d) == d {
			return "", "", fmt.Errorf("%s is not inside a Go module: put rules inside the edgetrack repository (%s), e.g. ./myrules/<name>", dir, edgetrackModule)
		}
	}
}

// inRepo returns the module root of dir and dir relative to it, and fails
// unless dir is inside the edgetrack module.
func inEdgetrackModule(dir string) (root, rel string, err error) {
	root, module, err := goModuleRoot(dir)
	if err != nil {
		return "", "", err
	}
	if module != edgetrackModule {
		return "", "", fmt.Errorf("%s is in module %q, not %s: rules build with the edgetrack repository's go.mod, so put them inside it, e.g. ./myrules/<name>", dir, module, edgetrackModule)
	}
	abs, _ := filepath.Abs(dir)
	rel, err = filepath.Rel(root, abs)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", "", fmt.Errorf("%s is not a directory below the module root %s", dir, root)
	}
	return root, filepath.ToSlash(rel), nil
}

// newScaffold writes a rule package of kind into dir and returns what it
// wrote and notes for the user.
func newScaffold(dir, kind string) (files []string, notes []string, err error) {
	if !slices.Contains(ruleKinds, kind) {
		return nil, nil, fmt.Errorf("unknown kind %q; use one of %s", kind, strings.Join(ruleKinds, ", "))
	}
	root, rel, err := inEdgetrackModule(dir)
	if err != nil {
		return nil, nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, nil, fmt.Errorf("%s exists and is not empty", dir)
	}
	name := filepath.Base(rel)
	s := ruleScaffold{Name: name, Dir: rel, Kind: kind, Route: kind}
	out := map[string][]byte{}

	var ruleGo []byte
	if kind != "blank" {
		src := filepath.Join(root, "wasm", "rules", kind)
		if _, err := os.Stat(src); err != nil {
			notes = append(notes, fmt.Sprintf("%s is missing, so rule.go is the blank template; route %q is still what rule_test.go checks", filepath.ToSlash(filepath.Join("wasm", "rules", kind)), kind))
		} else {
			ruleGo, err = copyBuiltinRule(src, "wasm/rules/"+kind)
			if err != nil {
				return nil, nil, fmt.Errorf("copying the %s rule: %w", kind, err)
			}
			s.Source = "wasm/rules/" + kind
		}
	} else {
		s.Route = ""
	}
	if ruleGo == nil {
		if ruleGo, err = ruleTemplates.ReadFile("ruletemplate/rule_blank.go.txt"); err != nil {
			return nil, nil, err
		}
	}
	out["rule.go"] = ruleGo
	for file, tmpl := range map[string]string{"main.go": "main.go.tmpl", "rule_test.go": "rule_test.go.tmpl", "README.md": "README.md.tmpl"} {
		if out[file], err = renderRuleTemplate(tmpl, s); err != nil {
			return nil, nil, err
		}
	}
	vk := kind
	if s.Source == "" {
		vk = "blank"
	}
	if out["vectors.json"], err = ruleTemplates.ReadFile("ruletemplate/vectors_" + vk + ".json"); err != nil {
		return nil, nil, err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	for _, file := range slices.Sorted(func(yield func(string) bool) {
		for f := range out {
			if !yield(f) {
				return
			}
		}
	}) {
		b := out[file]
		if strings.HasSuffix(file, ".go") {
			if b, err = format.Source(b); err != nil {
				return nil, nil, fmt.Errorf("formatting %s: %w", file, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			return nil, nil, err
		}
		files = append(files, filepath.Join(dir, file))
	}
	return files, notes, nil
}

func renderRuleTemplate(name string, s ruleScaffold) ([]byte, error) {
	t, err := template.ParseFS(ruleTemplates, "ruletemplate/"+name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, s); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// copyRule merges the non-test Go files of the rule package in dir into
// one file of package main: imports merged, declarations in file order,
// the file with the package documentation first. Sub-packages (test
// vectors) are imported, not copied.
func copyBuiltinRule(dir, from string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type file struct {
		name string
		doc  string
		body []byte
	}
	var (
		files   []file
		imports = map[string]string{} // "name path" → the spec as written
	)
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, n, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if strings.HasPrefix(c.Text, "//go:build") || strings.HasPrefix(c.Text, "//go:embed") {
					return nil, fmt.Errorf("%s has %s, which a merged copy cannot keep", n, strings.Fields(c.Text)[0])
				}
			}
		}
		end := fset.Position(f.Name.End()).Offset
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
				end = fset.Position(g.End()).Offset
				for _, spec := range g.Specs {
					is := spec.(*ast.ImportSpec)
					key := is.Path.Value
					if is.Name != nil {
						key = is.Name.Name + " " + key
					}
					imports[key] = key
				}
			}
		}
		doc := ""
		if f.Doc != nil {
			doc = f.Doc.Text()
		}
		files = append(files, file{name: n, doc: doc, body: bytes.TrimSpace(src[end:])})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	slices.SortStableFunc(files, func(a, b file) int {
		switch {
		case a.doc != "" && b.doc == "":
			return -1
		case a.doc == "" && b.doc != "":
			return 1
		}
		return 0
	})

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code copied from %s (package %s) by `edgetrack rules new`;\n", from, filepath.Base(dir))
	b.WriteString("// it is yours to change. The original package documentation follows.\n")
	if doc := files[0].doc; doc != "" {
		b.WriteString("//\n")
		for _, line := range strings.Split(strings.TrimRight(doc, "\n"), "\n") {
			if line == "" || line[0] == '\t' {
				b.WriteString("//" + line + "\n")
			} else {
				b.WriteString("// " + line + "\n")
			}
		}
	}
	b.WriteString("\npackage main\n\nimport (\n")
	// The standard library first, as goimports groups them.
	std := func(k string) bool { return !strings.Contains(strings.SplitN(goImportPath(k), "/", 2)[0], ".") }
	keys := slices.SortedFunc(func(yield func(string) bool) {
		for k := range imports {
			if !yield(k) {
				return
			}
		}
	}, func(a, b string) int {
		if sa, sb := std(a), std(b); sa != sb {
			if sa {
				return -1
			}
			return 1
		}
		return strings.Compare(goImportPath(a), goImportPath(b))
	})
	for i, k := range keys {
		if i > 0 && std(keys[i-1]) && !std(k) {
			b.WriteString("\n")
		}
		b.WriteString("\t" + k + "\n")
	}
	b.WriteString(")\n")
	for _, f := range files {
		fmt.Fprintf(&b, "\n// ---- from %s ----\n\n", f.name)
		b.Write(f.body)
		b.WriteString("\n")
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("merged source does not parse: %w", err)
	}
	return out, nil
}

func goImportPath(spec string) string {
	p := spec[strings.LastIndexByte(spec, ' ')+1:]
	s, err := strconv.Unquote(p)
	if err != nil {
		return p
	}
	return s
}
