package custody_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
)

// BenchmarkVerifyLargeArtifact measures verify's hashing throughput on a case
// holding one 256 MiB artifact in a local evidence folder (the file is in
// the page cache after the first pass, as it is for sha256sum). Compare with
//
//	sha256sum <dir>/case-bench/i-0123456789abcdef0/memory.lime
//
// The benchmark prints the path of the file it made (-v).
//
//	go test -run '^$' -bench BenchmarkVerifyLargeArtifact -benchtime 5x -v ./responder/custody/
func BenchmarkVerifyLargeArtifact(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	store := &evidence.Folder{Root: dir}
	ctx := context.Background()
	path := "i-0123456789abcdef0/memory.lime"
	name := filepath.Join(dir, "case-bench", filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fh, _ := os.Open(name)
	sum, n, err := evidence.HashReader(fh)
	fh.Close()
	if err != nil {
		b.Fatal(err)
	}
	m := &evidence.Manifest{SchemaVersion: evidence.SchemaVersion, CaseID: "case-bench", InstanceID: "i-0123456789abcdef0",
		Runs:      []evidence.Run{{Number: 1}},
		Artifacts: []evidence.Artifact{{Path: path, SHA256: sum, Size: n}}}
	if err := store.SaveManifest(ctx, m); err != nil {
		b.Fatal(err)
	}
	b.Logf("artifact: %s", name)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := (&custody.Custodian{Store: store}).Verify(ctx, "case-bench")
		if err != nil || v.Failed() {
			b.Fatalf("verify: %v %+v", err, v)
		}
	}
}
