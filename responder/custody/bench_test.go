package custody_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
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

// BenchmarkSaveRun measures what signing adds to the save of one run's
// record: unsigned (history copy, seal, manifest.json, and the read of the
// run before for the hash chain) against signed with a KMS key (the fake's
// real ECDSA P-256; GetPublicKey once per signer, then per run one Sign,
// the public key's two write-once files checked, the signature written).
// Each iteration saves run 2 (20 steps) of a new case whose run 1 (20
// steps) is saved beforehand, untimed, into a local folder.
// With latency, every KMS call waits that long, as a round trip to KMS
// does. Then verify's signature checks: BenchmarkVerifySignedCase.
//
//	go test -run '^$' -bench 'BenchmarkSaveRun|BenchmarkVerifySignedCase' -benchtime 200x ./responder/custody/
func BenchmarkSaveRun(b *testing.B) {
	for _, bc := range []struct {
		name    string
		signed  bool
		latency time.Duration
	}{{"unsigned", false, 0}, {"signed", true, 0}, {"signed-kms-20ms", true, 20 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			store := &evidence.Folder{Root: b.TempDir()}
			c := fakeaws.New()
			var signer evidence.Signer
			if bc.signed {
				out, err := c.KMS().CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
				if err != nil {
					b.Fatal(err)
				}
				signer = &evidence.KMSSigner{API: c.KMS(), KeyID: aws.ToString(out.KeyMetadata.Arn)}
			}
			c.Latency = bc.latency
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				m := benchRecord(fmt.Sprintf("case-bench-%d", i))
				m = evidence.AppendRun(m, *m, evidence.Revision{Run: evidence.Run{Number: 1, Playbook: "default"}, Steps: benchSteps(1)})
				if err := evidence.SaveRun(ctx, store, m); err != nil {
					b.Fatal(err)
				}
				m = evidence.AppendRun(m, *m, evidence.Revision{Run: evidence.Run{Number: 2, Playbook: "release"}, Steps: benchSteps(2)})
				b.StartTimer()
				if err := evidence.SaveSignedRun(ctx, store, m, signer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifySignedCase measures verify of a case of 10 signed runs,
// all offline (hash chain and ECDSA signatures with the stored key).
func BenchmarkVerifySignedCase(b *testing.B) {
	ctx := context.Background()
	store := &evidence.Folder{Root: b.TempDir()}
	c := fakeaws.New()
	out, err := c.KMS().CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		b.Fatal(err)
	}
	signer := &evidence.KMSSigner{API: c.KMS(), KeyID: aws.ToString(out.KeyMetadata.Arn)}
	m := benchRecord("case-bench")
	for i := 1; i <= 10; i++ {
		m = evidence.AppendRun(m, *m, evidence.Revision{Run: evidence.Run{Number: i, Playbook: "default"}, Steps: benchSteps(i)})
		if err := evidence.SaveSignedRun(ctx, store, m, signer); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := (&custody.Custodian{Store: store}).Verify(ctx, m.CaseID)
		if err != nil || v.Failed() || v.Unsigned() {
			b.Fatalf("verify: %v %+v", err, v)
		}
	}
}

func benchRecord(caseID string) *evidence.Manifest {
	return &evidence.Manifest{SchemaVersion: evidence.SchemaVersion, CaseID: caseID, InstanceID: "i-0123456789abcdef0",
		Runs: []evidence.Run{}, Artifacts: []evidence.Artifact{}, Snapshots: []evidence.Snapshot{}}
}

func benchSteps(run int) []evidence.StepRecord {
	steps := make([]evidence.StepRecord, 20)
	for i := range steps {
		steps[i] = evidence.StepRecord{Run: run, Name: "step", Phase: "contain", Status: "ok",
			Before: []byte(`{"interfaces":[{"network_interface_id":"eni-0123456789abcdef0","groups":["sg-0123456789abcdef0"]}]}`),
			Calls:  []evidence.Call{{Service: "EC2", Operation: "ModifyNetworkInterfaceAttribute", RequestID: "req", Duration: time.Millisecond}}}
	}
	return steps
}
