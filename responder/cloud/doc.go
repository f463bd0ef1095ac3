// Package cloud is the toolkit's only door to AWS.
//
// It holds two things:
//
//   - The operation registry: one interface per AWS service (EC2, S3, SNS, STS)
//     listing every operation the toolkit calls. The real SDK clients satisfy
//     them, so does the in-memory fake in package fakeaws, and the IAM policies in
//     cloudformation/ are checked against them (every operation granted, every
//     grant used). Consumers never take these wide interfaces: each one declares
//     the narrow interface it needs, and the wide interface only guarantees that
//     the clients handed out can serve it.
//
//   - Client construction: the standard SDK configuration chain (profiles,
//     AWS_REGION, AWS_ENDPOINT_URL and the per-service endpoint variables), an
//     optional assumed role in the workload account, the SDK's standard retryer
//     (throttling is retried with backoff, not reported), and a middleware that
//     records every call's operation and request ID for the case record.
package cloud
