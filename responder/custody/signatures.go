package custody

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/responder-ir/responder/responder/evidence"
)

// The checks in this file prove who wrote the record and that its history
// is whole: each run's history copy holds the SHA-256 of the copy before it
// (runs[].previous_sha256, the hash chain), and a signed run's copy is
// signed with a KMS key whose public key is stored beside it. They need no
// AWS call: the public key is in the case folder, or pinned by the caller
// (PublicKey). Only the online check (Keys) asks KMS.

// KeyReader is what the online check needs of AWS KMS.
type KeyReader interface {
	GetPublicKey(context.Context, *kms.GetPublicKeyInput, ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// revisions are the history copies of a case's runs, by run number, as
// stored (nil: not readable).
type revisions map[int][]byte

// verifyChain checks that each history copy is the record of its run,
// continuing the runs before it, and that each run's previous_sha256 is the
// SHA-256 of the copy of the run before: a replaced, reordered or missing
// revision breaks the chain.
func verifyChain(m *evidence.Manifest, revs revisions) []Check {
	var checks []Check
	chained := false
	for i, r := range m.Runs {
		name := evidence.HistoryName(r.Number)
		c := Check{Kind: "chain", Subject: name}
		body := revs[r.Number]
		if body == nil {
			continue // reported by the seal check
		}
		if detail := notRecordOf(body, m, i); detail != "" {
			c.Status, c.Detail = CheckMismatch, detail
			checks = append(checks, c)
			continue
		}
		switch {
		case i == 0 && r.PreviousSHA256 != "":
			c.Status, c.Detail = CheckMismatch, "the first run names a revision before it: a revision is missing"
		case i == 0:
			c.Status, c.Detail = CheckOK, "the first revision"
		case r.PreviousSHA256 == "" && chained:
			c.Status, c.Detail = CheckMismatch, "no previous_sha256 after chained runs: the chain is broken"
		case r.PreviousSHA256 == "":
			c.Status, c.Detail = CheckUnsigned, "written before the hash chain (schema before 1.5)"
		default:
			c.Status, c.Detail = chainLink(r, m.Runs[i-1].Number, revs)
		}
		chained = chained || r.PreviousSHA256 != "" || r.Signature != nil
		checks = append(checks, c)
	}
	return checks
}

// chainLink compares a run's previous_sha256 with the copy of the run before.
func chainLink(r evidence.Run, prev int, revs revisions) (string, string) {
	body := revs[prev]
	if body == nil {
		return CheckMissing, fmt.Sprintf("the history copy of run %d, which it chains to, is not readable", prev)
	}
	if got := evidence.SHA256(body); got != r.PreviousSHA256 {
		return CheckMismatch, fmt.Sprintf("chains to sha256 %s, the copy of run %d has %s: a revision was replaced, reordered or removed",
			r.PreviousSHA256, prev, got)
	}
	return CheckOK, fmt.Sprintf("chains to run %d (sha256 %s)", prev, r.PreviousSHA256)
}

// notRecordOf says why body is not the record of the i-th run of m (its
// runs are not m's first i+1 runs, entry for entry), "" when it is.
func notRecordOf(body []byte, m *evidence.Manifest, i int) string {
	h, err := evidence.DecodeManifest(body)
	if err != nil {
		return "does not decode: " + err.Error()
	}
	if h.CaseID != m.CaseID || len(h.Runs) != i+1 {
		return fmt.Sprintf("holds %d runs of case %s: not the record of run %d (reordered or replaced)", len(h.Runs), h.CaseID, m.Runs[i].Number)
	}
	for j := range h.Runs {
		a, _ := json.Marshal(h.Runs[j])
		b, _ := json.Marshal(m.Runs[j])
		if !bytes.Equal(a, b) {
			return fmt.Sprintf("its run %d differs from the record's: a revision was rewritten", h.Runs[j].Number)
		}
	}
	return ""
}

// signatureVerifier checks the signatures of a case's runs.
type signatureVerifier struct {
	ctx    context.Context
	store  evidence.Store
	caseID string
	// pinned is the DER public key the caller trusts (--public-key); nil:
	// the stored key is used.
	pinned []byte
}

// verifySignatures checks each run's signature over its history copy with
// the stored public key (and the pinned one, when given). An unsigned run
// is reported unsigned, never verified; with a pinned key it is a mismatch.
func (sv signatureVerifier) verifySignatures(m *evidence.Manifest, revs revisions) []Check {
	var checks []Check
	for _, r := range m.Runs {
		c := Check{Kind: "signature", Subject: evidence.HistoryName(r.Number)}
		body := revs[r.Number]
		switch {
		case r.Signature == nil && sv.pinned != nil:
			c.Status, c.Detail = CheckMismatch, "not signed, and a public key was pinned"+signingError(r)
		case r.Signature == nil:
			c.Status, c.Detail = CheckUnsigned, "not signed"+signingError(r)
		case body == nil:
			continue // reported by the seal check
		default:
			c.Status, c.Detail = sv.verifyRun(r, body)
		}
		checks = append(checks, c)
	}
	return checks
}

func signingError(r evidence.Run) string {
	if r.SigningError != "" {
		return ": " + r.SigningError
	}
	return ""
}

// verifyRun checks one run's signature.
func (sv signatureVerifier) verifyRun(r evidence.Run, body []byte) (string, string) {
	s := r.Signature
	if s.Algorithm != evidence.SigningAlgorithm {
		return CheckMismatch, "algorithm " + s.Algorithm + ", want " + evidence.SigningAlgorithm
	}
	pub, detail := sv.publicKey(s)
	if pub == nil {
		return CheckMismatch, detail
	}
	sig, err := sv.store.Get(sv.ctx, sv.caseID, evidence.SignatureName(r.Number))
	if err != nil {
		return CheckMissing, "no signature " + evidence.SignatureName(r.Number) + ": " + err.Error()
	}
	if !evidence.VerifyRecord(pub, body, sig) {
		return CheckMismatch, "the signature does not verify with key " + s.KeyID + ": the record or its signature was changed"
	}
	return CheckOK, "ECDSA P-256 by " + s.KeyID + detail
}

// publicKey reads the stored public key of a signature in both its forms
// (PEM, which openssl reads, and DER), checks that both are the key the
// record names, and, with a pinned key, that it is the pinned one. It
// returns nil and why when the key cannot be used.
func (sv signatureVerifier) publicKey(s *evidence.Signature) (*ecdsa.PublicKey, string) {
	var der []byte
	for _, p := range []string{s.PublicKey, evidence.PublicKeyName(s.PublicKeySHA256, "der")} {
		stored, err := sv.store.Get(sv.ctx, sv.caseID, p)
		if err != nil {
			return nil, "public key " + p + ": " + err.Error()
		}
		d, err := evidence.PublicKeyDER(stored)
		if err != nil {
			return nil, p + ": " + err.Error()
		}
		if evidence.SHA256(d) != s.PublicKeySHA256 {
			return nil, "the stored public key " + p + " is not the key the record names (sha256 " + s.PublicKeySHA256 + ")"
		}
		der = d
	}
	if sv.pinned != nil && !bytes.Equal(der, sv.pinned) {
		return nil, "signed with key " + s.KeyID + " (public key sha256 " + s.PublicKeySHA256 + "), not the pinned public key (sha256 " + evidence.SHA256(sv.pinned) + ")"
	}
	pub, _ := evidence.ParsePublicKey(der)
	if sv.pinned != nil {
		return pub, " (the pinned key)"
	}
	return pub, " (the stored key)"
}

// verifyKeysOnline asks KMS for the public key of every key that signed a
// run and compares it with the one stored in the case.
func verifyKeysOnline(ctx context.Context, api KeyReader, m *evidence.Manifest) []Check {
	var checks []Check
	seen := map[string]bool{}
	for _, r := range m.Runs {
		s := r.Signature
		if s == nil || seen[s.KeyID+s.PublicKeySHA256] {
			continue
		}
		seen[s.KeyID+s.PublicKeySHA256] = true
		c := Check{Kind: "signing-key", Subject: s.KeyID}
		out, err := api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(s.KeyID)})
		switch {
		case err != nil:
			c.Status, c.Detail = CheckError, err.Error()
		case evidence.SHA256(out.PublicKey) != s.PublicKeySHA256:
			c.Status, c.Detail = CheckMismatch, "KMS answers public key sha256 "+evidence.SHA256(out.PublicKey)+", the record names "+s.PublicKeySHA256
		default:
			c.Status, c.Detail = CheckOK, "KMS holds this key, with the stored public key"
		}
		checks = append(checks, c)
	}
	return checks
}
