package step

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
)

type tagAPI interface {
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
}

// CaseTag tags the instance with the case ID and the case status, so that
// anyone looking at the instance in the console sees it is under
// investigation and what the response proved. It runs after every
// containment step of the plan (a ContainmentReporter) and writes the word
// the case record gets: contained only when their read-backs held,
// partially-contained, containment-failed, acquired (no containment), or
// interrupted. A release writes released.
type CaseTag struct{}

func (CaseTag) Name() string             { return "case-tag" }
func (CaseTag) Phase() Phase             { return Contain }
func (CaseTag) Needs() []string          { return []string{"metadata:read", "snapshots"} }
func (CaseTag) ReportsContainment() bool { return true }

// StatusReleased is the value of the status tag after a release; otherwise
// the tag holds the case status (evidence.CaseStatus).
const StatusReleased = evidence.CaseReleased

type tagState struct {
	Tags map[string]string `json:"tags"`
}

func (s CaseTag) Run(ctx context.Context, env *Env) Result {
	before := tagState{Tags: map[string]string{}}
	for _, t := range env.Target.Instance.Tags {
		if k := aws.ToString(t.Key); k == TagCaseID || k == TagStatus {
			before.Tags[k] = aws.ToString(t.Value)
		}
	}
	if env.Target.DryRun {
		// Nothing is proved in a dry run: check the permission only.
		var api tagAPI = env.Clients.EC2
		_, err := api.CreateTags(ctx, s.input(env, map[string]string{TagCaseID: env.Target.CaseID, TagStatus: evidence.CaseWouldContain}))
		return dryRun(err, fmt.Sprintf("tag the instance %s=%s and %s with the outcome the containment steps prove",
			TagCaseID, env.Target.CaseID, TagStatus), before)
	}
	want := map[string]string{TagCaseID: env.Target.CaseID, TagStatus: env.Status()}
	if before.Tags[TagCaseID] == want[TagCaseID] && before.Tags[TagStatus] == want[TagStatus] {
		return Skipped("instance already tagged with this case and status", before)
	}
	return s.set(ctx, env, want, before)
}

func (s CaseTag) input(env *Env, tags map[string]string) *ec2.CreateTagsInput {
	in := &ec2.CreateTagsInput{Resources: []string{env.Target.InstanceID()}, DryRun: aws.Bool(env.Target.DryRun)}
	for _, k := range []string{TagCaseID, TagStatus} {
		if v, ok := tags[k]; ok {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
	}
	return in
}

func (s CaseTag) set(ctx context.Context, env *Env, tags map[string]string, before tagState) Result {
	var api tagAPI = env.Clients.EC2
	_, err := api.CreateTags(ctx, s.input(env, tags))
	what := fmt.Sprintf("tag the instance %s=%s, %s=%s", TagCaseID, tags[TagCaseID], TagStatus, tags[TagStatus])
	if env.Target.DryRun {
		return dryRun(err, what, before)
	}
	if err != nil {
		return Failed(fmt.Errorf("%s: %w", what, err), before)
	}
	return OK(fmt.Sprintf("tagged %s=%s, %s=%s", TagCaseID, tags[TagCaseID], TagStatus, tags[TagStatus]), before, tagState{Tags: tags})
}

// Release tags the instance with what the release steps before it proved
// (evidence.ReleaseStatus): released, or release-incomplete; the case ID
// tag stays, as a pointer to the case record.
func (s CaseTag) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before tagState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	status := evidence.ReleaseStatus(env.Finished(), evidence.Outcome{Interrupted: env.Interrupted()})
	if env.Target.DryRun {
		status = StatusReleased
	}
	return s.set(ctx, env, map[string]string{TagCaseID: env.Target.CaseID, TagStatus: status}, before)
}

// Describe: the responder tags on the instance.
func (CaseTag) Describe() Description {
	return Description{
		Aspect: "Responder tags on the instance",
		View:   viewCaseTags,
		Order:  60,
		OnFailure: "The instance is not tagged with the case: others may not see that it is under investigation, " +
			"and policies or automation keyed on the tag do not apply. Containment is not affected.",
	}
}

// viewCaseTags reads a tagState: key=value, sorted.
func viewCaseTags(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	var v tagState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	items := make([]string, 0, len(v.Tags))
	for k, val := range v.Tags {
		items = append(items, k+"="+val)
	}
	sort.Strings(items)
	return []SubjectState{{Subject: instanceID, Text: joinOr(items, "none")}}, nil
}
