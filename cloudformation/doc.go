// Package cloudformation holds the CloudFormation templates that deploy the
// toolkit (forensics-account.yaml, member-account.yaml) and the checks CI runs
// on them:
//
//   - security checks (checks.go): no wildcard actions on sensitive services,
//     encrypted buckets, topics and logs, an evidence bucket with Object Lock,
//     versioning, SSE-KMS, a public access block and a TLS-only policy that
//     accepts the header-less uploads of a suspect instance, a staging bucket
//     whose part lists expire;
//   - permission coverage (permissions_test.go): the roles that run the engine
//     are granted exactly the IAM actions of responder/cloud.Permissions for
//     their registry account labels, which are derived from the operation
//     registry the code is built on;
//   - OS-level collection (collection_test.go): the member role's SSM and
//     forensic access group grants, the forensic instance role that must
//     never reach the evidence store, the responder's multipart and staging
//     bucket grants;
//   - the Lambda wiring (lambda_test.go, statemachine_test.go): the function's
//     environment loads into responder/trigger's configuration, the API serves
//     POST /cases and GET /cases/{id}, the EventBridge rules invoke the
//     function, and the embedded state machine is lambda/statemachine.asl.json;
//   - cfn-lint (cfnlint_test.go), the maintained Python linter.
//
// The templates are parsed here (template.go), with the short-form intrinsic
// functions (!Ref, !Sub, !GetAtt, ...) turned into their long form.
package cloudformation
