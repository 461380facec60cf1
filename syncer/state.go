package syncer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateDir keeps what the webhook target must remember: the cursor per feed
// and the dead letters. Every file is written through a temporary file,
// fsync and rename, so a crash leaves the old file or the new one.
type stateDir string

func (d stateDir) cursorFile(feed string) string {
	return filepath.Join(string(d), "cursor-"+feed+".json")
}
func (d stateDir) deadDir() string { return filepath.Join(string(d), "deadletters") }

type cursorState struct {
	Feed   string `json:"feed"`
	Cursor string `json:"cursor"`
	Target string `json:"target"` // the URL, for a reader of the file
}

func (d stateDir) readCursor(feed string) (string, error) {
	b, err := os.ReadFile(d.cursorFile(feed))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var s cursorState
	if err := json.Unmarshal(b, &s); err != nil {
		return "", fmt.Errorf("%s: %w", d.cursorFile(feed), err)
	}
	return s.Cursor, nil
}

func (d stateDir) writeCursor(feed, cursor, target string) error {
	b, _ := json.Marshal(cursorState{Feed: feed, Cursor: cursor, Target: redact(target)})
	return writeFileAtomic(d.cursorFile(feed), b)
}

// writeFileAtomic replaces path with b durably.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	dh, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer dh.Close()
	return dh.Sync()
}

// deadLetter is a webhook batch that failed every attempt.
type deadLetter struct {
	ID       string          `json:"webhook_id"`
	URL      string          `json:"url"` // redacted
	Attempts int             `json:"attempts"`
	Error    string          `json:"last_error"`
	Body     json.RawMessage `json:"body"`
}

func (d stateDir) writeDead(l deadLetter) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(d.deadDir(), l.ID+".json"), b)
}

// deadLetters lists the dead letters' files, oldest name first.
func (d stateDir) deadLetters() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(d.deadDir(), "*.json"))
	return m, err
}
