// Package atomicfile replaces files so that a crash leaves either the old
// content or the new, never a mix or nothing: a temporary file in the same
// directory, synced, renamed over the target, and the directory synced so
// the rename itself survives. (github.com/google/renameio does the first
// three but leaves the directory unsynced.)
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path with data, creating its directory (0700) when
// missing. The file gets mode 0600.
func Write(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir syncs a directory, making the creations, renames and removals in
// it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
