package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/wasm/host"
)

// tinygoFlags are the flags every rule module is built with (docs/ABI.md).
var tinygoFlags = []string{"-target=wasip1", "-buildmode=c-shared", "-scheduler=none", "-no-debug", "-opt=2"}

// tinygoPath returns the TinyGo to build with: $TINYGO, or where `make
// tools` installs it.
func tinygoPath() (string, error) {
	if p := os.Getenv(envTinyGo); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("TinyGo not found at $%s=%s: run `make tools`, or point %s at a TinyGo 0.41: %w", envTinyGo, p, envTinyGo, err)
		}
		return p, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("TinyGo: no $%s and no home directory: %w", envTinyGo, err)
		}
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "edgetrack", "tools", "bin", "tinygo")
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("TinyGo not found at %s: run `make tools` (or set %s)", p, envTinyGo)
	}
	return p, nil
}

func newRulesBuildCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build <dir>",
		Short: "Compile a rule package into a .wasm module with TinyGo",
		Long: `build runs TinyGo (from $TINYGO, or where ` + "`make tools`" + ` installs it) on the
package in <dir>:

  tinygo build ` + strings.Join(tinygoFlags, " ") + ` -o <file> ./<dir>

The default output is <name>.wasm in the current directory, <name> being the
directory's base name.`,
		Example: `  edgetrack rules build ./myrules/scroll -o scroll.wasm`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			root, rel, err := inEdgetrackModule(dir)
			if err != nil {
				return err
			}
			tinygo, err := tinygoPath()
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Base(rel) + ".wasm"
			}
			absOut, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			argv := append([]string{"build"}, tinygoFlags...)
			argv = append(argv, "-o", absOut, "./"+rel)
			c := exec.CommandContext(cmd.Context(), tinygo, argv...)
			c.Dir = root
			var stderr bytes.Buffer
			c.Stdout, c.Stderr = cmd.OutOrStdout(), &stderr
			runErr := c.Run()
			for _, line := range strings.SplitAfter(stderr.String(), "\n") {
				// LLVM's noise about wasm features TinyGo passes; the
				// Makefile filters it too.
				if line != "" && !strings.Contains(line, "is not a recognized feature") {
					fmt.Fprint(cmd.ErrOrStderr(), line)
				}
			}
			if runErr != nil {
				return fmt.Errorf("tinygo build ./%s: %w", rel, runErr)
			}
			b, err := os.ReadFile(absOut)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s: %d bytes, sha256 %s\n", out, len(b), host.Hash(b))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the .wasm file to write (default <name>.wasm)")
	return cmd
}
