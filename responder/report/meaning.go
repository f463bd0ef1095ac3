package report

import (
	"encoding/json"

	"github.com/responder-ir/responder/responder/evidence"
)

// failureMeaning says, per step, what its failure means for the
// investigation: what evidence is missing or what the instance can still do.
var failureMeaning = map[string]string{
	"metadata": "No record of the instance's configuration at the time of the response (volumes, interfaces, " +
		"security groups and their rules, instance profile, tags, user data). Reconstruct it from CloudTrail " +
		"and AWS Config, if they were enabled.",
	"console-output": "No serial console output of that moment: boot and kernel messages, and anything printed " +
		"to the console, are not preserved. A later capture holds only what the console buffer still has.",
	"console-screenshot": "No picture of the console at that moment (a login prompt, a ransom note, a kernel " +
		"panic). It cannot be taken afterwards for that point in time.",
	"snapshots": "No disk image of that point in time: the volumes keep changing while the instance runs. " +
		"Snapshot the volumes as soon as possible (respond again with the same case ID) and account for the gap.",
	"quarantine-group": "No quarantine security group was ready, so the interfaces were not moved into one: " +
		"the instance may still be reachable and may still reach out.",
	"quarantine": "The instance may still be reachable, and may still reach out (command and control, " +
		"exfiltration): its interfaces may keep their old security groups. Isolate it another way now " +
		"(a network ACL on its subnet, or stop it after the evidence is safe) and check its groups.",
	"termination-protection": "The instance can still be terminated through the API: its memory and every " +
		"volume set to delete on termination would be lost.",
	"shutdown-behavior": "A shutdown from inside the instance may terminate it: its memory and every volume " +
		"set to delete on termination would be lost.",
	"instance-profile": "The instance profile may still be attached: code on the instance can keep getting " +
		"fresh credentials for its role and act in the account with the role's permissions. Credentials " +
		"already delivered stay valid until they expire in any case.",
	"case-tag": "The instance is not tagged with the case: others may not see that it is under investigation, " +
		"and policies or automation keyed on the tag do not apply. Containment is not affected.",
	"snapshot-copy": "This snapshot was not preserved in the forensics account: the disk image exists only in the " +
		"instance's account, where anyone with enough access there can delete it. Preserve it again " +
		"(responder preserve) and check the copy with responder verify before relying on it.",
	"forensic-access-group": "No forensic access group was prepared: the interfaces went to the closed quarantine " +
		"group, where SSM cannot reach the instance, so OS-level evidence could not be collected after isolation.",
	"ssm-access": "Systems Manager could not run commands on the instance (see the error): no memory image and no " +
		"volatile data were collected. Memory is lost when the instance stops; if it still runs, fix access " +
		"(the forensic profile, the VPC endpoints) and respond again with the same case ID.",
	"volatile-data": "No verified record of processes, connections, logins and persistence at that moment. " +
		"What arrived, if anything, is kept and recorded with the mismatch; do not rely on it without checking.",
	"memory-capture": "No verified memory image: injected code, connections, keys and processes that deleted " +
		"their binaries are not preserved. An image that did not arrive whole was not completed; a completed " +
		"image whose hash does not match the instance's report is kept and recorded as such.",
	"forensic-access-close": "The forensic access may still be open: the forensic instance profile may still be " +
		"associated, or interfaces may still allow HTTPS to the VPC's SSM and S3 endpoints. Check the " +
		"instance's profile and security groups now.",
	"notify": "The notification was not published: the people and systems subscribed to the topic do not " +
		"know about this response. Tell them another way.",
}

// skipMeaning says, per evidence step, what it means that the step was
// skipped and the case holds no such evidence.
var skipMeaning = map[string]string{
	"metadata":       "No record of the instance's configuration was stored for this case.",
	"console-output": "No serial console output was stored for this case.",
	"console-screenshot": "No console screenshot exists for this case: the instance type, the Region or the " +
		"instance state does not allow one (see the reason). This is a limit of the platform, not an error; " +
		"no picture of the console at that moment is available.",
	"snapshots":      "No disk image exists for this case (see the reason).",
	"volatile-data":  "No volatile data was collected (see the reason).",
	"memory-capture": "No memory image was collected (see the reason).",
}

// unknownMeaning is said of a failed step the report does not know.
const unknownMeaning = "See the error. This report does not know the step; check the case record."

// containMeaning is said of an unknown failed containment step.
const containMeaning = "A containment step failed: the instance may not be isolated. See the error."

// failures lists every failed step, and every evidence step skipped while
// the case holds none of that evidence, in record order.
func failures(m *evidence.Manifest) []Failure {
	out := []Failure{}
	for i, s := range m.Steps {
		switch s.Status {
		case evidence.StatusFailed:
			meaning, ok := failureMeaning[s.Name]
			if !ok {
				meaning = unknownMeaning
				if s.Phase == "contain" {
					meaning = containMeaning
				}
			}
			detail := s.Error
			if sub := stepSubject(s); sub != "" {
				detail = sub + ": " + detail
			}
			out = append(out, Failure{Run: s.Run, Step: s.Name, Phase: s.Phase, Status: s.Status,
				Detail: detail, Meaning: meaning, ResolvedInRun: resolvedIn(m.Steps[i+1:], s)})
		case evidence.StatusSkipped:
			meaning, ok := skipMeaning[s.Name]
			if !ok || holdsEvidence(m, s.Name) {
				continue
			}
			out = append(out, Failure{Run: s.Run, Step: s.Name, Phase: s.Phase, Status: s.Status,
				Detail: s.Reason, Meaning: meaning})
		}
	}
	return out
}

// resolvedIn is the first later run in which the step succeeded, or, for a
// containment step, found nothing to do (the state it sets was there).
// Steps recorded once per thing (a snapshot copy) must be about the same
// thing.
func resolvedIn(later []evidence.StepRecord, failed evidence.StepRecord) int {
	for _, s := range later {
		if s.Name != failed.Name || s.Run <= failed.Run || stepSubject(s) != stepSubject(failed) {
			continue
		}
		if s.Status == evidence.StatusOK || (s.Status == evidence.StatusSkipped && s.Phase == "contain") {
			return s.Run
		}
	}
	return 0
}

// stepSubject is what a step recorded once per thing is about: the source
// snapshot of a snapshot-copy record ("" for other steps).
func stepSubject(s evidence.StepRecord) string {
	if s.Name != "snapshot-copy" || !present(s.Before) {
		return ""
	}
	var v struct {
		SnapshotID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal(s.Before, &v); err != nil {
		return ""
	}
	return v.SnapshotID
}

// holdsEvidence reports whether the case holds what an evidence step
// collects.
func holdsEvidence(m *evidence.Manifest, step string) bool {
	if step == "snapshots" {
		return len(m.Snapshots) > 0
	}
	for _, a := range m.Artifacts {
		if a.Step == step {
			return true
		}
	}
	return false
}
