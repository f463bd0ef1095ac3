package playbooks

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileBytes caps a playbook file (the embedded playbooks are about 2 KiB):
// a larger file is refused before it is read.
const MaxFileBytes = 1 << 20

// readFile reads a playbook file. What is not a regular file (a directory, a
// FIFO that would block the reader, a device) and what is larger than
// MaxFileBytes are refused before reading. A symbolic link is followed.
func readFile(name string) ([]byte, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("playbook file: %w", err)
	}
	if err := checkFile(name, info); err != nil {
		return nil, err
	}
	// Non-blocking, so that a FIFO put in the file's place after the Stat
	// cannot block the open; what was opened is checked again.
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("playbook file: %w", err)
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("playbook file: %w", err)
	}
	if err := checkFile(name, info); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("playbook file %s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("playbook file %s: grew larger than %d bytes while read", name, MaxFileBytes)
	}
	return data, nil
}

// checkFile refuses what is not a regular file of at most MaxFileBytes.
func checkFile(name string, info fs.FileInfo) error {
	if !info.Mode().IsRegular() {
		return fmt.Errorf("playbook file %s is %s, not a regular file", name, fileKind(info.Mode()))
	}
	if info.Size() > MaxFileBytes {
		return fmt.Errorf("playbook file %s is %d bytes: a playbook may have at most %d (1 MiB)", name, info.Size(), MaxFileBytes)
	}
	return nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "of type " + m.Type().String()
	}
}
