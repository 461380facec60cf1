// Package ui is the analyst dashboard the aggregator serves at /ui/: static
// HTML, CSS and plain JavaScript in static/, and the chart library uPlot
// (MIT) vendored in static/vendor/uplot (its README says which release and
// how it was fetched). Nothing is built: the files are embedded as they are,
// and the page calls only the public query API (/stats, /events,
// /events/{id}, /matches) with the analyst's query token, so it works on any
// store backend; its rules page, served by the admin listener too, reads
// GET /rules there with an admin token.
package ui

import (
	"embed"
	"fmt"
	"io/fs"
	"mime"
	"path"

	"github.com/edgetrack/edgetrack/internal/asset"
)

//go:embed static/*.html static/*.js static/*.css static/vendor/uplot/*.js static/vendor/uplot/*.css static/vendor/uplot/LICENSE
var static embed.FS

// Files are the dashboard's files by their path under /ui/, compressed for
// serving; "" is index.html.
type Files map[string]*asset.File

// Load compresses the embedded files.
func Load() (Files, error) {
	out := Files{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "text/plain; charset=utf-8"
		}
		name := p[len("static/"):]
		f, err := asset.New(name, ctype, b)
		if err != nil {
			return err
		}
		out[name] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	out[""] = out["index.html"]
	return out, nil
}
