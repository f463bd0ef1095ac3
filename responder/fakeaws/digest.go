package fakeaws

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// StateDigest returns a hash of the account's whole mutable state: every
// resource, attribute, rule, tag, object and published message. Reads do not
// change it, so a test can assert that a dry run changed nothing:
//
//	before := c.StateDigest()
//	run(ctx, dryRun)
//	if after := c.StateDigest(); after != before { t.Error(...) }
//
// Snapshot progress (pending/completed) is left out, because
// DescribeSnapshots, a read, may advance it; so are the progress of SSM
// command invocations (GetCommandInvocation advances them) and the SSM
// Agents' ping status (DescribeInstanceInformation re-evaluates it), though
// the commands sent, SSM documents, VPC endpoints and multipart uploads are
// in. Injected faults, agent configuration and call counts are test
// configuration, not state, and are left out too.
func (c *Cloud) StateDigest() string {
	sum := sha256.Sum256([]byte(c.StateDump()))
	return hex.EncodeToString(sum[:])
}

// StateDump returns the JSON form of what StateDigest hashes, for a test to
// print when two digests differ.
func (c *Cloud) StateDump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Maps are written with sorted keys, so the dump is stable.
	b, err := json.MarshalIndent(&c.st, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("fakeaws: encoding the state: %v", err))
	}
	return string(b)
}
