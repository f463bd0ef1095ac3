package fakeaws

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os/exec"
)

// Decode undoes the compression of evidence an instance uploaded, as the
// collection scripts name it: "" or "none", "gzip", or "zstd" (decoded by
// the zstd program, which the scripts compress with).
func Decode(encoding string, b []byte) ([]byte, error) {
	switch encoding {
	case "", "none":
		return b, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return io.ReadAll(zr)
	case "zstd":
		cmd := exec.Command("zstd", "-d", "-c", "-q")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("zstd -d: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown encoding %q", encoding)
}
