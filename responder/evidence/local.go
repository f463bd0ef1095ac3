package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Folder keeps cases in a local directory: <root>/<case-id>/<path>. Artifacts
// are created exclusively (O_EXCL) and made read-only.
//
// Every operation goes through an os.Root opened on the directory, so no
// name can lead outside it: a case folder, or any folder or file in it,
// that is a symbolic link to somewhere outside the root (or an absolute
// one) is refused. (The root itself may be a link: it is the operator's
// --evidence-dir.)
type Folder struct {
	Root string
}

var _ Store = (*Folder)(nil)

// name returns the slash-separated name of a file of a case inside the root.
func (f *Folder) name(caseID, p string) (string, error) {
	if err := validateFolder(caseID); err != nil {
		return "", err
	}
	if err := validatePath(p); err != nil {
		return "", err
	}
	return caseID + "/" + p, nil
}

// open opens the root directory; create makes it first when it is missing.
// A missing root when reading is ErrNotFound.
func (f *Folder) open(create bool) (*os.Root, error) {
	if create {
		if err := os.MkdirAll(f.Root, 0o750); err != nil {
			return nil, fmt.Errorf("evidence folder %s: %w", f.Root, err)
		}
	}
	r, err := os.OpenRoot(f.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("evidence folder %s: %w", f.Root, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("evidence folder %s: %w", f.Root, err)
	}
	return r, nil
}

// Put writes an artifact once.
func (f *Folder) Put(_ context.Context, caseID, p string, body []byte, _ string) (Stored, error) {
	name, err := f.name(caseID, p)
	if err != nil {
		return Stored{}, err
	}
	r, err := f.open(true)
	if err != nil {
		return Stored{}, err
	}
	defer r.Close()
	if err := writeExclusive(r, name, body); err != nil {
		return Stored{}, fmt.Errorf("store %s: %w", f.Location(caseID, p), err)
	}
	return Stored{}, nil
}

// Get reads a file of a case.
func (f *Folder) Get(ctx context.Context, caseID, p string) ([]byte, error) {
	rc, err := f.Open(ctx, caseID, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Location(caseID, p), err)
	}
	return b, nil
}

// Open streams a file of a case.
func (f *Folder) Open(_ context.Context, caseID, p string) (io.ReadCloser, error) {
	name, err := f.name(caseID, p)
	if err != nil {
		return nil, err
	}
	r, err := f.open(false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fh, err := r.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", f.Location(caseID, p), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.Location(caseID, p), err)
	}
	return fh, nil
}

// Files lists every file of a case, sorted, with forward slashes. A
// symbolic link is listed as a file (reading it says where it leads).
func (f *Folder) Files(_ context.Context, caseID string) ([]string, error) {
	if err := ValidateCaseID(caseID); err != nil {
		return nil, err
	}
	r, err := f.open(false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var paths []string
	err = fs.WalkDir(r.FS(), caseID, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		paths = append(paths, strings.TrimPrefix(p, caseID+"/"))
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", f.Location(caseID, ""), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", f.Location(caseID, ""), err)
	}
	sort.Strings(paths)
	return paths, nil
}

// Cases lists the case folders that hold a manifest.
func (f *Folder) Cases(_ context.Context) ([]string, error) {
	r, err := f.open(false)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	entries, err := fs.ReadDir(r.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", f.Root, err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() || ValidateCaseID(e.Name()) != nil {
			continue
		}
		if _, err := r.Stat(e.Name() + "/" + ManifestName); err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// SaveManifest writes the run's history copy once, then its seal once, then
// replaces manifest.json atomically (write to a temporary file, then
// rename). A history copy or seal already there with the same content is
// kept: saving again completes a save that stopped (RepairRecord).
func (f *Folder) SaveManifest(_ context.Context, m *Manifest) error {
	b, err := EncodeManifest(m)
	if err != nil {
		return err
	}
	hist, err := f.name(m.CaseID, HistoryName(m.LastRun()))
	if err != nil {
		return err
	}
	r, err := f.open(true)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := writeOnceOrSame(r, hist, b); err != nil {
		return fmt.Errorf("store manifest history: %w", err)
	}
	seal, _ := f.name(m.CaseID, SealName(m.LastRun()))
	if err := writeOnceOrSame(r, seal, sealBody(b)); err != nil {
		return fmt.Errorf("store manifest seal: %w", err)
	}
	name, _ := f.name(m.CaseID, ManifestName)
	if err := replaceFile(r, name, b); err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	return nil
}

// Location is the file's path (the case folder when path is empty).
func (f *Folder) Location(caseID, p string) string {
	return filepath.Join(f.Root, caseID, filepath.FromSlash(p))
}

// writeExclusive creates name under r with body, once: ErrExists when it is
// there.
func writeExclusive(r *os.Root, name string, body []byte) error {
	if err := r.MkdirAll(path.Dir(name), 0o750); err != nil {
		return err
	}
	// Written beside it, then linked into place: the link fails when name
	// exists, and a reader never sees name empty or half written (a lock
	// being taken, an artifact being stored).
	tmp, err := writeTemp(r, name, body)
	if err != nil {
		return err
	}
	defer r.Remove(tmp) //nolint:errcheck // the link keeps the data
	err = r.Link(tmp, name)
	if errors.Is(err, fs.ErrExist) {
		return ErrExists
	}
	return err
}

// tempPrefix starts the names of the files written beside their final
// name before they take it; Files never lists them.
const tempPrefix = ".responder-tmp-"

// writeTemp writes body, read-only, to a new temporary file in the folder
// of name and returns its name.
func writeTemp(r *os.Root, name string, body []byte) (string, error) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	tmp := path.Dir(name) + "/" + tempPrefix + hex.EncodeToString(nonce[:])
	fh, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", err
	}
	if err := writeAndClose(fh, body); err != nil {
		r.Remove(tmp) //nolint:errcheck // a failed write leaves nothing behind
		return "", err
	}
	if err := r.Chmod(tmp, 0o440); err != nil {
		r.Remove(tmp) //nolint:errcheck
		return "", err
	}
	return tmp, nil
}

// writeOnceOrSame writes name once, or finds it there with body already
// (ErrExists when it holds something else).
func writeOnceOrSame(r *os.Root, name string, body []byte) error {
	err := writeExclusive(r, name, body)
	if !errors.Is(err, ErrExists) {
		return err
	}
	if held, rerr := r.ReadFile(name); rerr == nil && bytes.Equal(held, body) {
		return nil
	}
	return err
}

// replaceFile replaces name under r with body, read-only, atomically: a
// temporary file beside it, then a rename.
func replaceFile(r *os.Root, name string, body []byte) error {
	tmp, err := writeTemp(r, name, body)
	if err != nil {
		return err
	}
	defer r.Remove(tmp) //nolint:errcheck // gone after the rename
	return r.Rename(tmp, name)
}

func writeAndClose(fh *os.File, body []byte) error {
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
