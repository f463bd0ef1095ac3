// Package cloudformation holds the CloudFormation templates that deploy the
// toolkit (forensics-account.yaml, member-account.yaml, and
// member-documents.yaml, generated from ssm-documents/documents) and the
// checks CI runs on them:
//
//   - escalation checks (escalation.go, over every role of every template
//     together): no role that may write an SSM document and send commands,
//     pass any role with an instance profile association or RunInstances,
//     write policies on itself or a role it may assume, lift a legal hold
//     or bypass governance retention (but the custodian), or that trusts an
//     account root with no condition on who; values are resolved for every
//     value the parameters admit (values.go);
//   - the member documents (documents_test.go): the template's documents are
//     exactly ssm-documents';
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
