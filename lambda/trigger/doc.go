// Package trigger turns the events that start a response in an AWS
// organisation into calls of the engine (package responder). The Lambda
// function in lambda/ is a thin shell around Handler.Handle: it decodes
// nothing and decides nothing.
//
// Four kinds of event reach the same Handler, told apart by their shape:
//
//   - API Gateway requests (REST API proxy v1 and HTTP API v2, IAM
//     authorization): POST /cases starts a case, GET /cases/{id} reads it
//     (api.go, api_body.go).
//   - EventBridge "Security Hub Findings - Custom Action": one case per EC2
//     instance named by the selected findings, then a note on every finding
//     (securityhub.go, notes.go).
//   - EventBridge "GuardDuty Finding": one case per EC2 finding at or above a
//     severity threshold, off unless configured (guardduty.go).
//   - Step Functions task payloads {"task": ...}: the work of a case, which
//     runs in a state machine (lambda/statemachine.asl.json) so that nothing
//     depends on the 15-minute Lambda limit (task.go, snapshots.go).
//
// The entry points never run a response themselves: they validate the
// target, take a per-instance lock in the evidence store (lock.go) so that two
// events for one instance make one case, and start a Step Functions execution
// named after the case ID (start.go). The execution's first task calls
// responder.Respond; the next ones wait for the EBS snapshots.
//
// Configuration comes from environment variables (config.go; documented in
// lambda/README.md). Every log line about a case carries its case_id.
package trigger
