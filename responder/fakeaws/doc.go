// Package fakeaws is an in-memory AWS account for unit tests: one account, one
// Region, the EC2, S3, SNS, STS and KMS operations of the cloud package's
// operation registry, with AWS's semantics and error codes. Link lets one
// account copy the snapshots another shared with it (CopySnapshot across
// accounts).
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
//     client returns one (s3 NoSuchKey on GetObject, NotFound on HeadObject, SNS
//     NotFound/InvalidParameter/AuthorizationError on Publish), so
//     cloud.ErrorCode, errors.As and awshttp.ResponseError all work as against AWS.
//   - An EC2 call with DryRun set validates its input like the real call (a
//     missing resource still answers its NotFound code), then answers
//     DryRunOperation, or UnauthorizedOperation when the operation is denied,
//     and changes nothing.
//   - Each call is atomic: it validates everything before it changes anything,
//     so a failed call leaves the state as it was.
//   - Faults: Fail, Throttle and Deny inject errors per operation;
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
