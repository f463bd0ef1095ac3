package responder_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
)

var safeguardNow = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

func safeguardResponder(c *fakeaws.Cloud, store evidence.Store) *responder.Responder {
	r := casetest.NewResponder(c, store)
	r.Now = func() time.Time { return safeguardNow }
	return r
}

// changed reports whether a response touched the instance or took evidence.
func changed(c *fakeaws.Cloud) bool {
	for _, op := range []string{"CreateSnapshots", "ModifyNetworkInterfaceAttribute", "ModifyInstanceAttribute", "CreateTags", "DisassociateIamInstanceProfile"} {
		if c.CallCount(op) > 0 {
			return true
		}
	}
	return false
}

func TestProtectedInstanceRefused(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		tags      map[string]string
	}{
		{"default tag", "", map[string]string{responder.DefaultProtectedTag: "true"}},
		{"configured tag", "prod:do-not-touch", map[string]string{"prod:do-not-touch": "True"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeaws.New()
			id := c.AddInstance(fakeaws.InstanceSpec{Volumes: 1, Tags: tc.tags})
			dir := t.TempDir()
			store := &evidence.Folder{Root: dir}
			_, err := safeguardResponder(c, store).Respond(context.Background(), responder.Request{InstanceID: id, CaseID: caseID, ProtectedTag: tc.key})
			if !errors.Is(err, responder.ErrProtected) {
				t.Fatalf("err %v, want ErrProtected", err)
			}
			if changed(c) {
				t.Error("a refused response changed the instance or took evidence")
			}
			if _, err := os.Stat(filepath.Join(dir, caseID)); !os.IsNotExist(err) {
				t.Errorf("a refused response stored a case (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(dir, evidence.LocksFolder)); !os.IsNotExist(err) {
				t.Errorf("a refused response took a lock (%v)", err)
			}

			res, err := safeguardResponder(c, store).Respond(context.Background(), responder.Request{InstanceID: id, CaseID: caseID, ProtectedTag: tc.key, Force: true})
			if err != nil || res.Status != evidence.CaseContained {
				t.Fatalf("forced: %v, status %v", err, res)
			}
			f := res.Manifest.Runs[0].Forced
			if f == nil || f.By == "" || f.By != res.Manifest.Runs[0].Actor {
				t.Fatalf("forced run records %+v, want the actor %s", f, res.Manifest.Runs[0].Actor)
			}
		})
	}
	t.Run("other values and tags do not protect", func(t *testing.T) {
		c := fakeaws.New()
		id := c.AddInstance(fakeaws.InstanceSpec{Tags: map[string]string{responder.DefaultProtectedTag: "false", "protected": "true"}})
		res, err := safeguardResponder(c, &evidence.Folder{Root: t.TempDir()}).Respond(context.Background(), responder.Request{InstanceID: id, CaseID: caseID})
		if err != nil || res.Manifest.Runs[0].Forced != nil {
			t.Fatalf("err %v, forced %+v", err, res.Manifest.Runs[0].Forced)
		}
	})
}

// slots lists the blast radius slot objects of the fake's account in the
// hour of safeguardNow.
func slots(t *testing.T, dir string, c *fakeaws.Cloud) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, evidence.LocksFolder, "blast-radius", c.Account, evidence.BlastHour(safeguardNow), "slot-*.json"))
	return m
}

func TestBlastRadius(t *testing.T) {
	c := fakeaws.New()
	dir := t.TempDir()
	store := &evidence.Folder{Root: dir}
	const limit = 3
	var ids []string
	for range limit + 2 {
		ids = append(ids, c.AddInstance(fakeaws.InstanceSpec{Volumes: 1}))
	}
	caseOf := func(i int) string { return responder.NewCaseID(safeguardNow) }
	cases := make([]string, len(ids))
	for i := range ids {
		cases[i] = caseOf(i)
	}
	run := func(i int, req responder.Request) (*responder.Result, error) {
		req.InstanceID, req.CaseID = ids[i], cases[i]
		if req.BlastRadius == 0 {
			req.BlastRadius = limit
		}
		return safeguardResponder(c, store).Respond(context.Background(), req)
	}
	for i := range limit {
		res, err := run(i, responder.Request{})
		if err != nil || res.Status != evidence.CaseContained {
			t.Fatalf("case %d: %v %v", i, err, res)
		}
		if b := res.Manifest.Runs[0].BlastRadius; b == nil || b.Slot != i+1 || b.Limit != limit || b.RaisedBy != "" {
			t.Fatalf("case %d records blast radius %+v", i, b)
		}
	}
	if n := len(slots(t, dir, c)); n != limit {
		t.Fatalf("%d slot objects, want %d", n, limit)
	}

	// The next case is refused, naming the limit, and its instance is not touched.
	before := c.Instance(ids[limit])
	_, err := run(limit, responder.Request{})
	var full *evidence.BlastRadiusError
	if !errors.Is(err, responder.ErrBlastRadius) || !errors.As(err, &full) || full.Limit != limit {
		t.Fatalf("err %v, want the blast radius refusal", err)
	}
	after := c.Instance(ids[limit])
	if aws.ToString(after.NetworkInterfaces[0].Groups[0].GroupId) != aws.ToString(before.NetworkInterfaces[0].Groups[0].GroupId) ||
		after.DisableAPITermination || len(caseSnapshots(c, cases[limit])) != 0 {
		t.Error("the refused case changed its instance")
	}
	if _, err := os.Stat(filepath.Join(dir, cases[limit])); !os.IsNotExist(err) {
		t.Errorf("the refused case was stored (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, evidence.LocksFolder, "case", cases[limit])); !os.IsNotExist(err) {
		t.Errorf("the refused case took its run lock (%v)", err)
	}

	// A rerun of a case that holds a slot takes no second one.
	res, err := run(0, responder.Request{CaseIDGiven: true})
	if err != nil || res.Manifest.LastRun() != 2 {
		t.Fatalf("rerun: %v %v", err, res)
	}
	if n := len(slots(t, dir, c)); n != limit {
		t.Fatalf("%d slot objects after a rerun, want %d", n, limit)
	}
	// A dry run takes none either.
	if _, err := run(limit, responder.Request{DryRun: true}); err != nil {
		t.Fatalf("dry run: %v", err)
	}

	// --blast-radius raises it for one run, and the record says who.
	res, err = run(limit, responder.Request{BlastRadius: limit + 1, BlastRadiusRaised: true})
	if err != nil || res.Status != evidence.CaseContained {
		t.Fatalf("raised: %v %v", err, res)
	}
	b := res.Manifest.Runs[0].BlastRadius
	if b == nil || b.Limit != limit+1 || b.Slot != limit+1 || b.RaisedBy == "" || b.RaisedBy != res.Manifest.Runs[0].Actor {
		t.Fatalf("raised run records %+v", b)
	}
	// ...for that run only.
	if _, err := run(limit+1, responder.Request{}); !errors.Is(err, responder.ErrBlastRadius) {
		t.Fatalf("after a raised run: %v, want the blast radius refusal", err)
	}
}

// Runs racing for the last slots: exactly the limit win, the others change
// nothing.
func TestBlastRadiusConcurrent(t *testing.T) {
	c := fakeaws.New()
	dir := t.TempDir()
	store := &evidence.Folder{Root: dir}
	const limit, runs = 3, 10
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = c.AddInstance(fakeaws.InstanceSpec{})
	}
	var wg sync.WaitGroup
	errs := make([]error, runs)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = safeguardResponder(c, store).Respond(context.Background(), responder.Request{
				InstanceID: ids[i], CaseID: responder.NewCaseID(safeguardNow), BlastRadius: limit,
			})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			assertQuarantined(t, c, ids[i])
		case errors.Is(err, responder.ErrBlastRadius):
			if v := c.Instance(ids[i]); v.DisableAPITermination {
				t.Errorf("refused run %d changed its instance", i)
			}
		default:
			t.Errorf("run %d: %v", i, err)
		}
	}
	if won != limit {
		t.Fatalf("%d runs contained their instance, want %d", won, limit)
	}
	if n := len(slots(t, dir, c)); n != limit {
		t.Fatalf("%d slot objects, want %d", n, limit)
	}
}
