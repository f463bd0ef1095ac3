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
	DisableApiStop        *bool                                 `json:"disable_api_stop,omitempty"`
	ShutdownBehavior      string                                `json:"instance_initiated_shutdown_behavior,omitempty"`
	Errors                map[string]string                     `json:"errors,omitempty"`
}

func (s Metadata) Run(ctx context.Context, env *Env) Result {
	doc, errs := readMetadata(ctx, env)
	env.Reach(ctx, "read")
	return s.store(ctx, env, doc, errs)
}

// metadataReader makes the reads of the metadata step at once, each filling
// its part of the document; a failed read is noted in the document too.
type metadataReader struct {
	api  metadataAPI
	env  *Env
	inst types.Instance
	mu   sync.Mutex
	doc  InstanceMetadata
	errs *multierror.Error
	wg   sync.WaitGroup
}

// readMetadata describes what the instance is made of: its volumes, security
// groups, profile associations and attributes.
func readMetadata(ctx context.Context, env *Env) (InstanceMetadata, *multierror.Error) {
	inst := env.Target.Instance
	r := &metadataReader{api: env.Clients.EC2, env: env, inst: inst,
		doc: InstanceMetadata{CaseID: env.Target.CaseID, AccountID: env.Target.AccountID, Region: env.Target.Region, Instance: inst}}
	if vols := attachedVolumes(inst); len(vols) > 0 {
		r.read("volumes", func() error { return r.volumes(ctx, vols) })
	}
	if groups := instanceGroupIDs(inst); len(groups) > 0 {
		r.read("security_groups", func() error { return r.groups(ctx, groups) })
	}
	r.read("instance_profile_associations", func() error { return r.profiles(ctx, env.Target.InstanceID()) })
	r.read("user_data", func() error { return r.attribute(ctx, types.InstanceAttributeNameUserData) })
	r.read("disable_api_termination", func() error { return r.attribute(ctx, types.InstanceAttributeNameDisableApiTermination) })
	r.read("instance_initiated_shutdown_behavior", func() error {
		return r.attribute(ctx, types.InstanceAttributeNameInstanceInitiatedShutdownBehavior)
	})
	r.read("disable_api_stop", func() error { return r.attribute(ctx, types.InstanceAttributeNameDisableApiStop) })
	r.wg.Wait()
	return r.doc, r.errs
}

// read runs f beside the other reads, noting its failure as what.
func (r *metadataReader) read(what string, f func() error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := f(); err != nil {
			r.fail(what, err)
		}
	}()
}

func (r *metadataReader) fail(what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = multierror.Append(r.errs, fmt.Errorf("%s: %w", what, err))
	if r.doc.Errors == nil {
		r.doc.Errors = map[string]string{}
	}
	r.doc.Errors[what] = err.Error()
}

func (r *metadataReader) volumes(ctx context.Context, ids []string) error {
	out, err := r.api.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: ids})
	if err == nil {
		r.doc.Volumes = out.Volumes
	}
	return err
}

func (r *metadataReader) groups(ctx context.Context, ids []string) error {
	out, err := r.api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	if err == nil {
		r.doc.SecurityGroups = out.SecurityGroups
	}
	return err
}

func (r *metadataReader) profiles(ctx context.Context, instanceID string) error {
	out, err := r.api.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{Filters: instanceFilter(instanceID)})
	if err == nil {
		r.doc.ProfileAssociations = out.IamInstanceProfileAssociations
	}
	return err
}

// attribute reads one instance attribute into its field of the document.
func (r *metadataReader) attribute(ctx context.Context, name types.InstanceAttributeName) error {
	out, err := r.api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: r.inst.InstanceId, Attribute: name})
	if err != nil {
		return err
	}
	r.env.setAttribute(name, out)
	switch {
	case name == types.InstanceAttributeNameUserData && out.UserData != nil && out.UserData.Value != nil:
		r.doc.UserDataBase64 = *out.UserData.Value
		if raw, derr := base64.StdEncoding.DecodeString(r.doc.UserDataBase64); derr == nil {
			r.doc.UserData = string(raw)
		}
	case name == types.InstanceAttributeNameDisableApiTermination && out.DisableApiTermination != nil:
		r.doc.DisableApiTermination = out.DisableApiTermination.Value
	case name == types.InstanceAttributeNameInstanceInitiatedShutdownBehavior && out.InstanceInitiatedShutdownBehavior != nil:
		r.doc.ShutdownBehavior = aws.ToString(out.InstanceInitiatedShutdownBehavior.Value)
	case name == types.InstanceAttributeNameDisableApiStop && out.DisableApiStop != nil:
		r.doc.DisableApiStop = out.DisableApiStop.Value
	}
	return nil
}

// store writes the metadata document into the case, once.
func (s Metadata) store(ctx context.Context, env *Env, doc InstanceMetadata, errs *multierror.Error) Result {
	inst := doc.Instance
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
