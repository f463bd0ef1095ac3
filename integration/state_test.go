package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/responder-ir/responder/internal/lab"
)

// Tags and values the responder contract promises.
const (
	tagCase       = "responder:case-id"
	tagSource     = "responder:source-instance-id"
	tagQuarantine = "responder:quarantine"
)

// instanceState is what AWS shows about the lab instance and its
// surroundings: everything a response may change.
type instanceState struct {
	DisableAPITermination bool
	ShutdownBehavior      string
	Tags                  map[string]string
	ProfileAssociations   []string            // IDs of live (associated/associating) associations
	InterfaceGroups       map[string][]string // interface ID -> its groups, sorted
	InstanceGroups        []string            // the instance's own group list (see quarantineOf)
	Snapshots             []string            // snapshots of the instance's volumes, sorted
	VPCGroups             []string            // every security group in the VPC, sorted
}

// observe reads instanceState through the AWS API (moto directly, not the proxy).
func observe(t *testing.T, c *lab.Clients, l *lab.Lab) instanceState {
	t.Helper()
	ctx := context.Background()
	e := c.EC2
	st := instanceState{Tags: map[string]string{}, InterfaceGroups: map[string][]string{}}

	inst, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{l.InstanceID}})
	must(t, err)
	for _, tag := range inst.Reservations[0].Instances[0].Tags {
		st.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	attr := func(name ec2types.InstanceAttributeName) *ec2.DescribeInstanceAttributeOutput {
		out, err := e.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: &l.InstanceID, Attribute: name})
		must(t, err)
		return out
	}
	st.DisableAPITermination = aws.ToBool(attr(ec2types.InstanceAttributeNameDisableApiTermination).DisableApiTermination.Value)
	st.ShutdownBehavior = aws.ToString(attr(ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value)
	for _, g := range attr(ec2types.InstanceAttributeNameGroupSet).Groups {
		st.InstanceGroups = append(st.InstanceGroups, aws.ToString(g.GroupId))
	}
	slices.Sort(st.InstanceGroups)

	assoc, err := e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{l.InstanceID}}},
	})
	must(t, err)
	for _, a := range assoc.IamInstanceProfileAssociations {
		if a.State == ec2types.IamInstanceProfileAssociationStateAssociated || a.State == ec2types.IamInstanceProfileAssociationStateAssociating {
			st.ProfileAssociations = append(st.ProfileAssociations, aws.ToString(a.AssociationId))
		}
	}

	enis, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{l.InstanceID}}},
	})
	must(t, err)
	for _, n := range enis.NetworkInterfaces {
		var groups []string
		for _, g := range n.Groups {
			groups = append(groups, aws.ToString(g.GroupId))
		}
		slices.Sort(groups)
		st.InterfaceGroups[aws.ToString(n.NetworkInterfaceId)] = groups
	}

	snaps, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{{Name: aws.String("volume-id"), Values: []string{l.RootVolumeID, l.DataVolumeID}}},
	})
	must(t, err)
	for _, s := range snaps.Snapshots {
		st.Snapshots = append(st.Snapshots, aws.ToString(s.SnapshotId))
	}
	slices.Sort(st.Snapshots)

	groups, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{l.VpcID}}},
	})
	must(t, err)
	for _, g := range groups.SecurityGroups {
		st.VPCGroups = append(st.VPCGroups, aws.ToString(g.GroupId))
	}
	slices.Sort(st.VPCGroups)
	return st
}

// assertContained checks what a successful response leaves on AWS.
func assertContained(t *testing.T, c *lab.Clients, l *lab.Lab, caseID string) {
	t.Helper()
	st := observe(t, c, l)
	if !st.DisableAPITermination {
		t.Error("termination protection (DisableApiTermination) is off")
	}
	if st.ShutdownBehavior != "stop" {
		t.Errorf("shutdown behaviour = %q, want stop", st.ShutdownBehavior)
	}
	if got := st.Tags[tagCase]; got != caseID {
		t.Errorf("instance tag %s = %q, want %q", tagCase, got, caseID)
	}
	if len(st.ProfileAssociations) != 0 {
		t.Errorf("instance profile still associated: %v", st.ProfileAssociations)
	}
	assertRevoked(t, c, l, caseID)

	q := quarantineGroup(t, c, l)
	for _, eni := range []string{l.PrimaryENI, l.SecondaryENI} {
		groups, ok := st.InterfaceGroups[eni]
		if !ok {
			t.Errorf("interface %s is no longer attached", eni)
			continue
		}
		// moto reports an attached interface's groups as its own plus the
		// instance's own list, which only ModifyInstanceAttribute changes. On
		// AWS an interface shows exactly its own groups. So the instance's
		// list (other than the quarantine group) is moto's addition, not a
		// group the interface really has; it cannot be told apart here.
		var own []string
		for _, g := range groups {
			if g == q || !slices.Contains(st.InstanceGroups, g) {
				own = append(own, g)
			}
		}
		if !slices.Equal(own, []string{q}) {
			t.Errorf("interface %s groups = %v (moto adds the instance's %v), want only the quarantine group %s",
				eni, groups, st.InstanceGroups, q)
		}
	}
}

// quarantineGroup returns the one group of the lab's VPC tagged as the
// quarantine group, and checks it has no rules at all.
func quarantineGroup(t *testing.T, c *lab.Clients, l *lab.Lab) string {
	t.Helper()
	out, err := c.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{l.VpcID}},
			{Name: aws.String("tag:" + tagQuarantine), Values: []string{"true"}},
		},
	})
	must(t, err)
	if len(out.SecurityGroups) != 1 {
		t.Fatalf("VPC %s has %d groups tagged %s=true, want 1", l.VpcID, len(out.SecurityGroups), tagQuarantine)
	}
	g := out.SecurityGroups[0]
	if len(g.IpPermissions) != 0 || len(g.IpPermissionsEgress) != 0 {
		t.Errorf("quarantine group %s has %d ingress and %d egress rules, want none",
			aws.ToString(g.GroupId), len(g.IpPermissions), len(g.IpPermissionsEgress))
	}
	return aws.ToString(g.GroupId)
}

// assertSnapshots checks that every volume of the instance has one snapshot
// tagged with the case, and returns their IDs, sorted.
func assertSnapshots(t *testing.T, c *lab.Clients, l *lab.Lab, caseID string) []string {
	t.Helper()
	out, err := c.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{{Name: aws.String("tag:" + tagCase), Values: []string{caseID}}},
	})
	must(t, err)
	var ids, volumes []string
	for _, s := range out.Snapshots {
		ids = append(ids, aws.ToString(s.SnapshotId))
		volumes = append(volumes, aws.ToString(s.VolumeId))
		source := ""
		for _, tag := range s.Tags {
			if aws.ToString(tag.Key) == tagSource {
				source = aws.ToString(tag.Value)
			}
		}
		if source != l.InstanceID {
			t.Errorf("snapshot %s tag %s = %q, want %s", aws.ToString(s.SnapshotId), tagSource, source, l.InstanceID)
		}
	}
	slices.Sort(ids)
	slices.Sort(volumes)
	want := []string{l.RootVolumeID, l.DataVolumeID}
	slices.Sort(want)
	if !slices.Equal(volumes, want) {
		t.Errorf("snapshots tagged with case %s are of volumes %v, want one each of %v", caseID, volumes, want)
	}
	return ids
}

// manifest holds the fields of manifest.json the contract promises.
type manifest struct {
	SchemaVersion string    `json:"schema_version"`
	CaseID        string    `json:"case_id"`
	InstanceID    string    `json:"instance_id"`
	AccountID     string    `json:"account_id"`
	Region        string    `json:"region"`
	Actor         string    `json:"actor"`
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`
	Steps         []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Reason string `json:"reason"`
		Error  string `json:"error"`
	} `json:"steps"`
	Artifacts []struct {
		Path        string    `json:"path"`
		SHA256      string    `json:"sha256"`
		Size        int64     `json:"size"`
		ContentType string    `json:"content_type"`
		CollectedAt time.Time `json:"collected_at"`
	} `json:"artifacts"`
	Snapshots []struct {
		SnapshotID string `json:"snapshot_id"`
		VolumeID   string `json:"volume_id"`
	} `json:"snapshots"`
}

// evidenceStore reads a file of a case, given its path relative to the case
// folder.
type evidenceStore func(t *testing.T, path string) []byte

func bucketStore(c *lab.Clients, bucket, caseID string) evidenceStore {
	return func(t *testing.T, path string) []byte {
		t.Helper()
		key := "cases/" + caseID + "/" + path
		out, err := c.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
		}
		defer out.Body.Close()
		data, err := io.ReadAll(out.Body)
		must(t, err)
		return data
	}
}

func dirStore(dir, caseID string) evidenceStore {
	return func(t *testing.T, path string) []byte {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, caseID, filepath.FromSlash(path)))
		must(t, err)
		return data
	}
}

// assertManifest reads the case's manifest from the store, checks its
// promised fields, that every artifact's stored bytes match its recorded
// SHA-256 and size, and that its snapshots are the ones AWS has for the case.
func assertManifest(t *testing.T, get evidenceStore, l *lab.Lab, caseID string, snapshots []string) manifest {
	t.Helper()
	var m manifest
	if err := json.Unmarshal(get(t, "manifest.json"), &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	for field, got := range map[string]string{"schema_version": m.SchemaVersion, "actor": m.Actor} {
		if got == "" {
			t.Errorf("manifest %s is empty", field)
		}
	}
	for field, c := range map[string][2]string{
		"case_id":     {m.CaseID, caseID},
		"instance_id": {m.InstanceID, l.InstanceID},
		"account_id":  {m.AccountID, l.AccountID},
		"region":      {m.Region, l.Region},
	} {
		if c[0] != c[1] {
			t.Errorf("manifest %s = %q, want %q", field, c[0], c[1])
		}
	}
	if m.StartedAt.IsZero() || m.EndedAt.Before(m.StartedAt) {
		t.Errorf("manifest started_at %s, ended_at %s", m.StartedAt, m.EndedAt)
	}
	if len(m.Steps) == 0 {
		t.Error("manifest has no steps")
	}
	for _, s := range m.Steps {
		if !slices.Contains([]string{"ok", "failed", "skipped"}, s.Status) {
			t.Errorf("step %s status %q", s.Name, s.Status)
		}
	}
	if len(m.Artifacts) == 0 {
		t.Error("manifest lists no artifacts")
	}
	for _, a := range m.Artifacts {
		data := get(t, a.Path)
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != a.SHA256 || int64(len(data)) != a.Size {
			t.Errorf("artifact %s: stored sha256 %s size %d, manifest says %s size %d", a.Path, got, len(data), a.SHA256, a.Size)
		}
	}
	var recorded []string
	for _, s := range m.Snapshots {
		recorded = append(recorded, s.SnapshotID)
	}
	slices.Sort(recorded)
	if !slices.Equal(recorded, snapshots) {
		t.Errorf("manifest snapshots %v, AWS has %v for the case", recorded, snapshots)
	}
	return m
}

// failedSteps lists the steps of m that failed, with their errors.
func failedSteps(m manifest) []string {
	var failed []string
	for _, s := range m.Steps {
		if s.Status == "failed" {
			failed = append(failed, s.Name+": "+s.Error)
		}
	}
	return failed
}

// assertNotified waits for the SNS message that names the case in the lab's
// queue (SNS envelope delivery: the message is in "Message").
func assertNotified(t *testing.T, c *lab.Clients, l *lab.Lab, caseID string) {
	t.Helper()
	ctx := context.Background()
	var seen []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &l.QueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		must(t, err)
		for _, msg := range out.Messages {
			var envelope struct{ Subject, Message string }
			if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &envelope); err != nil {
				t.Fatalf("SQS message is not an SNS envelope: %v: %s", err, aws.ToString(msg.Body))
			}
			if strings.Contains(envelope.Message, caseID) {
				return
			}
			seen = append(seen, envelope.Message)
		}
	}
	t.Errorf("no SNS message naming case %s reached queue %s; saw %q", caseID, l.QueueURL, seen)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// revocationPolicy reads the credential revocation of a case from the lab
// role, decoded; found is false when the role has no such policy.
func revocationPolicy(t *testing.T, c *lab.Clients, l *lab.Lab, caseID string) (doc string, found bool) {
	t.Helper()
	out, err := c.IAM.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{
		RoleName: aws.String(l.RoleName), PolicyName: aws.String("responder-revoke-" + caseID)})
	if err != nil {
		if strings.Contains(err.Error(), "NoSuchEntity") {
			return "", false
		}
		t.Fatalf("GetRolePolicy: %v", err)
	}
	doc = aws.ToString(out.PolicyDocument)
	if d, err := url.PathUnescape(doc); err == nil {
		doc = d
	}
	return doc, true
}

// assertRevoked checks, on the lab role, the deny the case put there: every
// action, for the sessions issued to the lab instance before the response.
func assertRevoked(t *testing.T, c *lab.Clients, l *lab.Lab, caseID string) {
	t.Helper()
	doc, found := revocationPolicy(t, c, l, caseID)
	if l.InstanceProfileARN == "" {
		// The instance had no profile when the response started: nothing
		// to revoke, and the role must be left alone.
		if found {
			t.Errorf("role %s got a revocation, but the instance had no profile: %s", l.RoleName, doc)
		}
		return
	}
	if !found {
		t.Errorf("role %s has no policy responder-revoke-%s", l.RoleName, caseID)
		return
	}
	var p struct {
		Statement []struct {
			Effect, Action, Resource string
			Condition                map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil || len(p.Statement) != 1 {
		t.Fatalf("revocation policy %s: %v", doc, err)
	}
	st := p.Statement[0]
	issued, err := time.Parse(time.RFC3339, st.Condition["DateLessThan"]["aws:TokenIssueTime"])
	arn := st.Condition["ArnEquals"]["ec2:SourceInstanceARN"]
	if st.Effect != "Deny" || st.Action != "*" || st.Resource != "*" || err != nil || time.Since(issued) > time.Hour ||
		!strings.HasPrefix(arn, "arn:aws:ec2:") || !strings.HasSuffix(arn, ":instance/"+l.InstanceID) || len(st.Condition) != 2 {
		t.Errorf("revocation policy on %s is not a deny of the instance's older sessions: %s", l.RoleName, doc)
	}
}
