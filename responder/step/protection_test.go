package step_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// deleteOnTermination maps each attached volume of the instance to its
// DeleteOnTermination, as the fake now has it.
func deleteOnTermination(t *testing.T, c *fakeaws.Cloud, id string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range c.Instance(id).BlockDeviceMappings {
		out[aws.ToString(m.Ebs.VolumeId)] = aws.ToBool(m.Ebs.DeleteOnTermination)
	}
	return out
}

// runSteps runs a plan of step names against the instance and returns the
// records by name.
func runSteps(t *testing.T, c *fakeaws.Cloud, id string, names ...string) ([]evidence.StepRecord, map[string]evidence.StepRecord) {
	t.Helper()
	plan, err := step.Plan(names)
	if err != nil {
		t.Fatal(err)
	}
	recs := step.Execute(context.Background(), envFor(t, c, id), plan, 0)
	byName := map[string]evidence.StepRecord{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	return recs, byName
}

// release runs a step's Release from its recorded before, against the
// instance as it is now.
func release(t *testing.T, c *fakeaws.Cloud, id string, rec evidence.StepRecord) step.Result {
	t.Helper()
	s, err := step.Lookup(rec.Name)
	if err != nil {
		t.Fatal(err)
	}
	return s.(step.Releaser).Release(context.Background(), envFor(t, c, id), mustRaw(t, rec.Before))
}

func TestStopProtectionSetReadBackAndReleased(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	_, recs := runSteps(t, c, s.InstanceID, "stop-protection")
	rec := recs["stop-protection"]
	if rec.Status != evidence.StatusOK || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("stop-protection: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	if !c.Instance(s.InstanceID).DisableAPIStop {
		t.Fatal("stop protection not enabled")
	}
	var before, after struct {
		DisableAPIStop *bool `json:"disable_api_stop"`
	}
	if err := json.Unmarshal(rec.Before, &before); err != nil || before.DisableAPIStop == nil || *before.DisableAPIStop {
		t.Errorf("before %s (%v), want disable_api_stop false", rec.Before, err)
	}
	if err := json.Unmarshal(rec.After, &after); err != nil || after.DisableAPIStop == nil || !*after.DisableAPIStop {
		t.Errorf("after %s (%v), want disable_api_stop true", rec.After, err)
	}

	if r := release(t, c, s.InstanceID, rec); r.Status != evidence.StatusOK {
		t.Fatalf("release: %s %v", r.Status, r.Err)
	}
	if c.Instance(s.InstanceID).DisableAPIStop {
		t.Error("stop protection still enabled after release")
	}
}

// A change EC2 accepts but does not make is not held.
func TestStopProtectionAcceptedButNotMadeIsNotHeld(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.Ignore("ModifyInstanceAttribute", -1)
	_, recs := runSteps(t, c, s.InstanceID, "stop-protection")
	if rec := recs["stop-protection"]; rec.Status != evidence.StatusFailed || rec.Containment != evidence.ContainmentNotHeld {
		t.Fatalf("stop-protection: %s %s, want failed and not-held", rec.Status, rec.Containment)
	}
}

func TestDeleteOnTerminationClearedOnEveryVolumeAndReleased(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{Volumes: 3})
	original := deleteOnTermination(t, c, id)
	if len(original) != 3 {
		t.Fatalf("want 3 volumes, have %v", original)
	}
	_, recs := runSteps(t, c, id, "delete-on-termination")
	rec := recs["delete-on-termination"]
	if rec.Status != evidence.StatusOK || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("delete-on-termination: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	for vol, del := range deleteOnTermination(t, c, id) {
		if del {
			t.Errorf("%s still deleted on termination", vol)
		}
	}
	var before struct {
		Volumes []struct {
			DeviceName          string `json:"device_name"`
			VolumeID            string `json:"volume_id"`
			DeleteOnTermination bool   `json:"delete_on_termination"`
		} `json:"volumes"`
	}
	if err := json.Unmarshal(rec.Before, &before); err != nil {
		t.Fatal(err)
	}
	if len(before.Volumes) != 3 {
		t.Fatalf("before records %d volumes, want 3: %s", len(before.Volumes), rec.Before)
	}
	for _, v := range before.Volumes {
		if v.DeviceName == "" || original[v.VolumeID] != v.DeleteOnTermination {
			t.Errorf("before of %s: %+v, want delete_on_termination %t", v.VolumeID, v, original[v.VolumeID])
		}
	}

	if r := release(t, c, id, rec); r.Status != evidence.StatusOK {
		t.Fatalf("release: %s %v", r.Status, r.Err)
	}
	for vol, del := range deleteOnTermination(t, c, id) {
		if del != original[vol] {
			t.Errorf("%s: DeleteOnTermination %t after release, want %t", vol, del, original[vol])
		}
	}
}

func TestDeleteOnTerminationAlreadyKeptIsHeldWithoutChange(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{InstanceStore: true})
	_, recs := runSteps(t, c, id, "delete-on-termination")
	if rec := recs["delete-on-termination"]; rec.Status != evidence.StatusSkipped || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("delete-on-termination: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
}

// One new containment step failing leaves the case partially contained,
// never contained: the quarantine holds, the other step does not.
func TestFailedProtectionStepIsPartiallyContained(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		prepare    func(c *fakeaws.Cloud)
	}{
		{"stop protection unreadable", "stop-protection", func(c *fakeaws.Cloud) { c.Deny("DescribeInstanceAttribute") }},
		{"stop protection refused", "stop-protection", func(c *fakeaws.Cloud) { c.Deny("ModifyInstanceAttribute") }},
		{"delete-on-termination refused", "delete-on-termination", func(c *fakeaws.Cloud) { c.Deny("ModifyInstanceAttribute") }},
		{"delete-on-termination not read back", "delete-on-termination", func(c *fakeaws.Cloud) { c.Fail("DescribeInstances", "InternalError", -1) }},
		{"delete-on-termination accepted, not made", "delete-on-termination", func(c *fakeaws.Cloud) { c.Ignore("ModifyInstanceAttribute", -1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			env := envFor(t, c, s.InstanceID) // before the fault: the engine described the instance
			tc.prepare(c)
			plan, err := step.Plan([]string{"quarantine-group", "quarantine", tc.step})
			if err != nil {
				t.Fatal(err)
			}
			recs := step.Execute(context.Background(), env, plan, 0)
			for _, r := range recs {
				if r.Name == tc.step && (r.Status != evidence.StatusFailed || r.Containment == evidence.ContainmentHeld) {
					t.Errorf("%s: %s %s, want failed and not held", r.Name, r.Status, r.Containment)
				}
			}
			if got := evidence.CaseStatus(recs, evidence.Outcome{}); got != evidence.CasePartiallyContained {
				t.Errorf("case status %s, want %s", got, evidence.CasePartiallyContained)
			}
		})
	}
}
