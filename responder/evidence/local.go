package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Folder keeps cases in a local directory: <root>/<case-id>/<path>. Artifacts
// are created exclusively (O_EXCL) and made read-only.
type Folder struct {
	Root string
}

var _ Store = (*Folder)(nil)

func (f *Folder) file(caseID, path string) (string, error) {
	if err := ValidateCaseID(caseID); err != nil {
		return "", err
	}
	if err := validatePath(path); err != nil {
		return "", err
	}
	return filepath.Join(f.Root, caseID, filepath.FromSlash(path)), nil
}

// Put writes an artifact once.
func (f *Folder) Put(_ context.Context, caseID, path string, body []byte, _ string) (Stored, error) {
	name, err := f.file(caseID, path)
	if err != nil {
		return Stored{}, err
	}
	if err := writeExclusive(name, body); err != nil {
		return Stored{}, fmt.Errorf("store %s: %w", path, err)
	}
	return Stored{}, nil
}

// Get reads a file of a case.
func (f *Folder) Get(_ context.Context, caseID, path string) ([]byte, error) {
	name, err := f.file(caseID, path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", f.Location(caseID, path), ErrNotFound)
	}
	return b, err
}

// SaveManifest writes the run's history copy once, then replaces manifest.json
// atomically (write to a temporary file, then rename).
func (f *Folder) SaveManifest(_ context.Context, m *Manifest) error {
	b, err := EncodeManifest(m)
	if err != nil {
		return err
	}
	hist, err := f.file(m.CaseID, historyName(m.LastRun()))
	if err != nil {
		return err
	}
	if err := writeExclusive(hist, b); err != nil {
		return fmt.Errorf("store manifest history: %w", err)
	}
	name, _ := f.file(m.CaseID, ManifestName)
	tmp, err := os.CreateTemp(filepath.Dir(name), ".manifest-*.tmp")
	if err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("store manifest: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store manifest: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o440); err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	return nil
}

// Location is the file's path (the case folder when path is empty).
func (f *Folder) Location(caseID, path string) string {
	return filepath.Join(f.Root, caseID, filepath.FromSlash(path))
}

func writeExclusive(name string, body []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return err
	}
	fh, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o440)
	if errors.Is(err, fs.ErrExist) {
		return ErrExists
	}
	if err != nil {
		return err
	}
	if _, err := fh.Write(body); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
