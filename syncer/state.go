package syncer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgetrack/edgetrack/internal/atomicfile"
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
	return atomicfile.Write(d.cursorFile(feed), b)
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
	return atomicfile.Write(filepath.Join(d.deadDir(), l.ID+".json"), b)
}

// deadLetters lists the dead letters' files, oldest name first.
func (d stateDir) deadLetters() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(d.deadDir(), "*.json"))
	return m, err
}
