package custody_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
)

// heldCase records a case in an Object Lock bucket and returns its store and
// the keys of its objects.
func heldCase(t *testing.T) (*fakeaws.Cloud, *evidence.Bucket, []string) {
	t.Helper()
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: 30}})
	store := &evidence.Bucket{API: c.S3(), Name: "evidence"}
	casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
	var keys []string
	for key := range c.Objects("evidence") {
		keys = append(keys, key)
	}
	return c, store, keys
}

// custodyRecords reads the custody records stored in the bucket.
func custodyRecords(t *testing.T, c *fakeaws.Cloud) []evidence.CustodyRecord {
	t.Helper()
	var recs []evidence.CustodyRecord
	for key, o := range c.Objects("evidence") {
		if !strings.Contains(key, "/"+evidence.CustodyFolder) {
			continue
		}
		var r evidence.CustodyRecord
		if err := json.Unmarshal(o.Body, &r); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// A hold that did not take effect on one object is counted once, against
// the case's objects only, and the custody record lists only the objects
// that are held.
func TestHoldCountsOnlyTheCaseObjects(t *testing.T) {
	c, store, keys := heldCase(t)
	c.Ignore("PutObjectLegalHold", 1) // accepted, not applied: only a read-back sees it
	res, err := (&custody.Custodian{Store: store, Caller: c.STS()}).Hold(context.Background(), casetest.CaseID, true)
	want := fmt.Sprintf("1 of %d objects failed", len(keys))
	if err == nil || !strings.Contains(err.Error(), want) || res.Failed() != 1 {
		t.Fatalf("err %v, %d failed; want %q", err, res.Failed(), want)
	}
	recs := custodyRecords(t, c)
	if len(recs) != 1 {
		t.Fatalf("%d custody records, want 1", len(recs))
	}
	objects := c.Objects("evidence")
	if len(recs[0].Objects) != len(keys)-1 {
		t.Errorf("the record lists %d objects, want %d", len(recs[0].Objects), len(keys)-1)
	}
	for key, o := range objects {
		path := key[strings.Index(key, casetest.CaseID+"/")+len(casetest.CaseID)+1:]
		held := o.LegalHold == s3types.ObjectLockLegalHoldStatusOn
		if listed := slices.Contains(recs[0].Objects, path); listed && !held {
			t.Errorf("the record lists %s, which is not held", path)
		} else if !listed && held && !strings.HasPrefix(path, evidence.CustodyFolder) {
			t.Errorf("%s is held but not in the record", path)
		}
	}
}

// When no hold takes effect, no custody record claims one, and the count
// is of the case's objects.
func TestHoldThatTookNoEffectIsNotRecorded(t *testing.T) {
	c, store, keys := heldCase(t)
	c.Deny("PutObjectLegalHold")
	_, err := (&custody.Custodian{Store: store, Caller: c.STS()}).Hold(context.Background(), casetest.CaseID, true)
	want := fmt.Sprintf("%d of %d objects failed", len(keys), len(keys))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want %q", err, want)
	}
	if recs := custodyRecords(t, c); len(recs) != 0 {
		t.Fatalf("custody records written for holds that did not take effect: %+v", recs)
	}
}
