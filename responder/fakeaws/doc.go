// Package fakeaws is an in-memory AWS account for unit tests: one account, one
// Region, the EC2, S3, SNS, STS, KMS, SSM and IAM operations of the cloud
// package's operation registry, with AWS's semantics and error codes. Link
// lets one account copy the snapshots another shared with it (CopySnapshot
// across accounts). IAM holds roles with their inline policies and instance
// profiles (an instance made with a profile of the account gets one, with a
// role of the same name); SessionDenied evaluates a role's inline denies for
// one session, as AWS would for a request signed with it.
//
// The cloud's own record of an instance: CloudTrail's Event history
// (AddTrailEvents; LookupEvents with one lookup attribute, a time range,
// pages of at most 50, NextToken bound to the request, ThrottlingException
// above two requests a second: LookupEventsThrottled counts them, and
// FastLookups raises the rate for tests not about pacing), GuardDuty
// (EnableGuardDuty, AddGuardDutyFinding; ListDetectors, ListFindings with
// criteria, GetFindings of at most 50) and Security Hub as a member account
// reads it (EnableSecurityHub, AddSecurityHubFinding; GetFindings with
// ResourceId and RecordState filters, paged, InvalidAccessException until
// enabled).
//
// OS-level collection through SSM is modelled end to end: SetAgent gives an
// instance an SSM Agent (Agent: platform, whether it needs an instance
// profile, warm-up, polls, faults); DescribeInstanceInformation shows it as a
// managed node whose ping status follows the instance profile and CanReach
// (security groups, VPC endpoints added with AddVpcEndpoint, the S3 prefix
// list); SendCommand and GetCommandInvocation run the document on this
// machine as the SSM Agent would on the instance: a Linux document's shell
// steps run for real (so the Responder-* documents of ssm-documents run their
// own scripts, with bash, curl and zstd or gzip), their presigned requests
// served by this account's S3 or another's registered with AgentS3
// (multipart uploads included) through a loopback HTTPS endpoint. The
// Windows documents, whose PowerShell cannot run here, have a small
// stand-in. Commands returns what was sent.
//
// A test builds the account it needs, hands the service fakes to the code under
// test, then asserts on the resulting state:
//
//	c, s := fakeaws.NewSuspect()
//	err := contain(ctx, c.EC2(), s.InstanceID)
//	...
//	if got := c.Instance(s.InstanceID); got.IamInstanceProfile != nil { ... }
//
// What it models, and how:
//
//   - Every call sleeps Latency (if set, cancelled with the context), records
//     itself with cloud.RecordCall (with a fresh request ID), and fails the way
//     the SDK fails: a *smithy.OperationError wrapping an *awshttp.ResponseError
//     (HTTP status and request ID) wrapping the API error. The API error is a
//     *smithy.GenericAPIError, or the SDK's modelled error type where the real
//     client returns one (s3 NoSuchKey on GetObject, NotFound on HeadObject,
//     NoSuchUpload on AbortMultipartUpload, SNS NotFound/InvalidParameter/
//     AuthorizationError on Publish, SSM's modelled errors such as
//     InvalidInstanceId and InvocationDoesNotExist), so
//     cloud.ErrorCode, errors.As and awshttp.ResponseError all work as against AWS.
//   - An EC2 call with DryRun set validates its input like the real call (a
//     missing resource still answers its NotFound code), then answers
//     DryRunOperation, or UnauthorizedOperation when the operation is denied,
//     and changes nothing.
//   - Each call is atomic: it validates everything before it changes anything,
//     so a failed call leaves the state as it was.
//   - Faults: Fail, Throttle and Deny inject errors per operation (Deny
//     ("PutObject") and ("GetObject") also refuse the agent's presigned
//     requests, which are authorised by the signer's permissions);
//     Agent.Fault makes an SSM Agent misbehave around the real scripts
//     (on the wire, in what the instance offers them, or in the agent);
//     GroupPropagationCalls imitates the eventual consistency of new security
//     groups; SnapshotCompletesAfter and CompleteSnapshots move snapshots from
//     pending to completed.
//   - Inspection (Instance, SecurityGroup, Snapshots, Objects, Published, ...)
//     returns copies, and StateDigest hashes the whole mutable state so that a
//     test can assert a dry run changed nothing.
//
// Builders (AddVPC, AddInstance, AddBucket, ...) are for test setup: they panic
// on invalid input, like regexp.MustCompile.
//
// Pagination is not modelled: Describe calls return everything in one page.
package fakeaws
