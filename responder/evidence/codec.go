package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// EncodeManifest renders a manifest as indented JSON with a final newline.
func EncodeManifest(m *Manifest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeManifest parses a manifest and checks that this code can read its
// schema version (any 1.x).
func DecodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if !strings.HasPrefix(m.SchemaVersion, "1.") {
		return nil, fmt.Errorf("manifest schema version %q is not supported (want 1.x)", m.SchemaVersion)
	}
	return &m, nil
}
