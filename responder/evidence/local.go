package evidence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

// Open streams a file of a case.
func (f *Folder) Open(_ context.Context, caseID, path string) (io.ReadCloser, error) {
	name, err := f.file(caseID, path)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", f.Location(caseID, path), ErrNotFound)
	}
	return fh, err
}

// Files lists every file of a case, sorted, with forward slashes.
func (f *Folder) Files(_ context.Context, caseID string) ([]string, error) {
	if err := ValidateCaseID(caseID); err != nil {
		return nil, err
	}
	root := filepath.Join(f.Root, caseID)
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".manifest-") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", root, ErrNotFound)
	}
	sort.Strings(paths)
	return paths, err
}

// Cases lists the case folders that hold a manifest.
func (f *Folder) Cases(_ context.Context) ([]string, error) {
	entries, err := os.ReadDir(f.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == LocksFolder || ValidateCaseID(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(f.Root, e.Name(), ManifestName)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// SaveManifest writes the run's history copy once, then replaces manifest.json
// atomically (write to a temporary file, then rename).
func (f *Folder) SaveManifest(_ context.Context, m *Manifest) error {
	b, err := EncodeManifest(m)
	if err != nil {
		return err
	}
	hist, err := f.file(m.CaseID, HistoryName(m.LastRun()))
	if err != nil {
		return err
	}
	if err := writeExclusive(hist, b); err != nil {
		return fmt.Errorf("store manifest history: %w", err)
	}
	seal, _ := f.file(m.CaseID, SealName(m.LastRun()))
	if err := writeExclusive(seal, sealBody(b)); err != nil {
		return fmt.Errorf("store manifest seal: %w", err)
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
