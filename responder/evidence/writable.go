package evidence

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-multierror"
)

// CheckWritable proves, before a response changes anything, that the folder
// can take a case's record: it creates the root folder (as the first write
// would) and a file in it and, when the case's folder exists (a resumed
// case), a file in that too; then removes them. The files are named like the
// store's other temporary files (".manifest-*"), which listings skip.
func (f *Folder) CheckWritable(caseID string) error {
	if err := ValidateCaseID(caseID); err != nil {
		return err
	}
	if err := os.MkdirAll(f.Root, 0o750); err != nil {
		return fmt.Errorf("evidence folder %s cannot be created: %w", f.Root, err)
	}
	if err := probe(f.Root); err != nil {
		return fmt.Errorf("evidence folder %s is not writable: %w", f.Root, err)
	}
	dir := filepath.Join(f.Root, caseID)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("case folder %s: %w", dir, err)
	case !info.IsDir():
		return fmt.Errorf("case folder %s is not a folder", dir)
	}
	if err := probe(dir); err != nil {
		return fmt.Errorf("case folder %s is not writable: %w", dir, err)
	}
	return nil
}

// probe creates and removes a file in dir.
func probe(dir string) error {
	tmp, err := os.CreateTemp(dir, ".manifest-writable-*.tmp")
	if err != nil {
		return err
	}
	return multierror.Append(nil, tmp.Close(), os.Remove(tmp.Name())).ErrorOrNil()
}
