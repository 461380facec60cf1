package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/edgetrack/edgetrack/internal/atomicfile"
)

// writeFileAtomic publishes data as dir/name (internal/atomicfile).
func writeFileAtomic(dir, name string, data []byte) error {
	if err := atomicfile.Write(filepath.Join(dir, name), data); err != nil {
		return fmt.Errorf("registry: writing %s: %w", name, err)
	}
	return nil
}

// writeJSONFile publishes v as indented JSON.
func writeJSONFile(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("registry: encoding %s: %w", name, err)
	}
	return writeFileAtomic(dir, name, append(b, '\n'))
}

// readJSONFile decodes dir/name into v; a missing file leaves v alone.
func readJSONFile(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("registry: %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}
