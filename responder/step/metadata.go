package step

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/evidence"
)

// metadataAPI is what the metadata step reads.
type metadataAPI interface {
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
}

// Metadata stores the instance as found: the instance description, its
// volumes, interfaces, security groups with their rules, instance profile
// associations, tags and user data, as one JSON document.
type Metadata struct{}

func (Metadata) Name() string    { return "metadata" }
func (Metadata) Phase() Phase    { return Acquire }
func (Metadata) Needs() []string { return nil }

// Milestones: "read" is reached when every read is done, before the
// document is stored; containment waits for that, not for the upload.
func (Metadata) Milestones() []string { return []string{"read"} }

// InstanceMetadata is the document the metadata step stores.
type InstanceMetadata struct {
	CaseID                string                                `json:"case_id"`
	AccountID             string                                `json:"account_id"`
	Region                string                                `json:"region"`
	Instance              types.Instance                        `json:"instance"`
	Volumes               []types.Volume                        `json:"volumes"`
	SecurityGroups        []types.SecurityGroup                 `json:"security_groups"`
	ProfileAssociations   []types.IamInstanceProfileAssociation `json:"instance_profile_associations"`
	UserData              string                                `json:"user_data,omitempty"`
	UserDataBase64        string                                `json:"user_data_base64,omitempty"`
	DisableApiTermination *bool                                 `json:"disable_api_termination,omitempty"`
	ShutdownBehavior      string                                `json:"instance_initiated_shutdown_behavior,omitempty"`
	Errors                map[string]string                     `json:"errors,omitempty"`
}

func (s Metadata) Run(ctx context.Context, env *Env) Result {
	var api metadataAPI = env.Clients.EC2
	inst := env.Target.Instance
	doc := InstanceMetadata{CaseID: env.Target.CaseID, AccountID: env.Target.AccountID, Region: env.Target.Region, Instance: inst}

	var (
		mu   sync.Mutex
		errs *multierror.Error
		wg   sync.WaitGroup
	)
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = multierror.Append(errs, fmt.Errorf("%s: %w", what, err))
		if doc.Errors == nil {
			doc.Errors = map[string]string{}
		}
		doc.Errors[what] = err.Error()
	}
	read := func(what string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				fail(what, err)
			}
		}()
	}
	if vols := attachedVolumes(inst); len(vols) > 0 {
		read("volumes", func() error {
			out, err := api.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: vols})
			if err == nil {
				doc.Volumes = out.Volumes
			}
			return err
		})
	}
	if groups := instanceGroupIDs(inst); len(groups) > 0 {
		read("security_groups", func() error {
			out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: groups})
			if err == nil {
				doc.SecurityGroups = out.SecurityGroups
			}
			return err
		})
	}
	read("instance_profile_associations", func() error {
		out, err := api.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{Filters: instanceFilter(env.Target.InstanceID())})
		if err == nil {
			doc.ProfileAssociations = out.IamInstanceProfileAssociations
		}
		return err
	})
	read("user_data", func() error {
		out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: inst.InstanceId, Attribute: types.InstanceAttributeNameUserData})
		if err == nil && out.UserData != nil && out.UserData.Value != nil {
			doc.UserDataBase64 = *out.UserData.Value
			if raw, derr := base64.StdEncoding.DecodeString(doc.UserDataBase64); derr == nil {
				doc.UserData = string(raw)
			}
		}
		return err
	})
	read("disable_api_termination", func() error {
		out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: inst.InstanceId, Attribute: types.InstanceAttributeNameDisableApiTermination})
		if err == nil && out.DisableApiTermination != nil {
			doc.DisableApiTermination = out.DisableApiTermination.Value
		}
		return err
	})
	read("instance_initiated_shutdown_behavior", func() error {
		out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: inst.InstanceId, Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
		if err == nil && out.InstanceInitiatedShutdownBehavior != nil {
			doc.ShutdownBehavior = aws.ToString(out.InstanceInitiatedShutdownBehavior.Value)
		}
		return err
	})
	wg.Wait()
	env.Reach(ctx, "read")

	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return Failed(fmt.Errorf("encode metadata: %w", err), nil)
	}
	a, err := env.SaveArtifact(ctx, s.Name(), "metadata.json", body, "application/json", "ec2:Describe*")
	summary := map[string]any{"volumes": len(doc.Volumes), "security_groups": len(doc.SecurityGroups),
		"network_interfaces": len(inst.NetworkInterfaces), "instance_profile_associations": len(doc.ProfileAssociations)}
	switch {
	case errors.Is(err, ErrAlreadyCollected):
		return Skipped("metadata already collected in this case ("+a.Path+")", nil)
	case err != nil:
		return Failed(multierror.Append(errs, err).ErrorOrNil(), nil)
	case errs.ErrorOrNil() != nil:
		return Result{Status: evidence.StatusFailed, Err: errs.ErrorOrNil(), After: map[string]any{"artifact": a.Path, "partial": true}}
	case env.Target.DryRun:
		return OK("dry run: would store "+a.Path, nil, summary)
	}
	return OK("stored "+a.Path, nil, summary)
}

// Describe: the before and after summarise the stored metadata, not a state.
func (Metadata) Describe() Description {
	return Description{
		NoState: true,
		OnFailure: "No record of the instance's configuration at the time of the response (volumes, interfaces, " +
			"security groups and their rules, instance profile, tags, user data). Reconstruct it from CloudTrail " +
			"and AWS Config, if they were enabled.",
		OnSkip: "No record of the instance's configuration was stored for this case.",
	}
}
