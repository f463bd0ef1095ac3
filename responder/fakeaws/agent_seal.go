package fakeaws

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"regexp"
	"sync"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// Sealed parameters on the fake agent (ssm-documents/README.md, "Sealed
// parameters"): the sealing-key documents make an RSA key pair that stays
// with the agent and print the public key (SPKI on Linux, modulus and
// exponent on Windows, as the real scripts do); a collection document
// opens its Sealed parameter with the key it names, which is deleted then,
// whatever the outcome, so the same ciphertext opens nothing twice. Keys
// are 2048 bits here (the scripts make 3072) to keep the tests quick.

// sealingKeys are the keys an agent holds, by key ID.
type sealingKeys struct {
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
}

func (k *sealingKeys) put(id string, key *rsa.PrivateKey) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.keys[id]; ok {
		return false
	}
	if k.keys == nil {
		k.keys = map[string]*rsa.PrivateKey{}
	}
	k.keys[id] = key
	return true
}

// take returns a key and deletes it.
func (k *sealingKeys) take(id string) *rsa.PrivateKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := k.keys[id]
	delete(k.keys, id)
	return key
}

// sealingKeysLocked returns the agent's keys.
func (a *agentState) sealingKeysLocked() *sealingKeys {
	if a.keys == nil {
		a.keys = &sealingKeys{}
	}
	return a.keys
}

// isSealingKeyDocument reports whether a document makes sealing keys. The
// agent's faults (Agent.Fault) are the collection's: they leave these
// documents alone.
func isSealingKeyDocument(name string) bool {
	return name == ssmdocuments.LinuxSealingKey || name == ssmdocuments.WindowsSealingKey
}

var sealingKeyID = regexp.MustCompile(ssmdocuments.PatternSealingKeyID)

// makeSealingKey does what the sealing-key documents do.
func (j *agentJob) makeSealingKey(windows bool) agentResult {
	id := j.params[ssmdocuments.ParamSealingKeyID]
	fail := func(msg string) agentResult {
		return agentResult{exitCode: 1, stdout: string(marshal(map[string]string{
			"schema": ssmdocuments.SealingKeySchema, "status": "failed", "error": msg})) + "\n"}
	}
	if !sealingKeyID.MatchString(id) {
		return fail("invalid sealing key ID")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fail("key generation failed")
	}
	if !j.keys.put(id, key) {
		return fail("a key with this ID exists")
	}
	out := map[string]string{"schema": ssmdocuments.SealingKeySchema, "status": "succeeded", "key_id": id, "algorithm": "RSA-OAEP-SHA256"}
	if windows {
		out["modulus"] = base64.StdEncoding.EncodeToString(key.N.Bytes())
		out["exponent"] = base64.StdEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())
	} else {
		spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		out["public_key"] = base64.StdEncoding.EncodeToString(spki)
	}
	return agentResult{stdout: string(marshal(out)) + "\n"}
}

// unseal opens the job's sealed parameters into its parameters, by name.
// On failure it returns the failed report the document's wrapper or script
// prints, and false.
func (j *agentJob) unseal() (agentResult, bool) {
	sealed, ok := j.params[ssmdocuments.ParamSealed]
	if !ok {
		return agentResult{}, true
	}
	doc, _ := ssmdocuments.Lookup(j.document)
	key := j.keys.take(j.params[ssmdocuments.ParamSealingKeyID])
	if key == nil {
		return j.failSealed(doc, "sealed parameters: sealing key "+j.params[ssmdocuments.ParamSealingKeyID]+" is not on this instance"), false
	}
	values, err := doc.Unseal(key, sealed)
	if err != nil {
		return j.failSealed(doc, "sealed parameters: "+err.Error()), false
	}
	for name, v := range values {
		j.params[name] = v
	}
	return agentResult{}, true
}

func (j *agentJob) failSealed(doc ssmdocuments.Document, msg string) agentResult {
	return agentResult{exitCode: 1, stdout: string(marshal(map[string]string{
		"schema": doc.ReportSchema, "status": "failed", "error": msg})) + "\n"}
}

// marshal encodes a report of the sealing documents as one JSON line.
func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
