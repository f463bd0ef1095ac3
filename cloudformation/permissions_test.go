package cloudformation

import (
	"sort"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/cloud"
)

// engineRoles are the roles that run the code, by template: each must be
// granted exactly the IAM actions cloud.Permissions lists for its accounts
// (registry account labels), less the operations its runner never calls
// (neverCalls).
var engineRoles = []struct {
	template, role string
	accounts       []string
	neverCalls     map[string]string
}{
	{memberTemplate, "ResponderMemberRole", []string{cloud.WorkloadAccount}, nil},
	// The CLI's responder role also runs responder investigate (registry
	// account "investigation"), which the function never does.
	{forensicsTemplate, "ResponderRole", []string{cloud.EvidenceAccount, cloud.Investigation}, nil},
	// The function runs the engine's forensics-account side (evidence store,
	// notification, assuming the member role), the disk images and the
	// investigation workspaces (the image and investigate tasks) and, alone,
	// starts and reads the cases' executions and notes Security Hub findings.
	{forensicsTemplate, "ResponderLambdaRole", []string{cloud.EvidenceAccount, cloud.Investigation, cloud.LambdaFunction}, lambdaNeverCalls},
}

// lambdaNeverCalls lists the operations of the Lambda role's registry
// accounts that the function never calls, with the reason. They are left out
// of the role's required set on purpose, not granted. The function runs
// every one of them now (OS-level collection in the collect task, disk
// images in the image task, workspaces in the investigate task), so the
// list is empty; an entry that is not an operation of the role's accounts
// fails TestPermissionCoverage, so that the list cannot go stale.
var lambdaNeverCalls = map[string]string{}

// notCalledByTheCode lists, per role, the actions a role is granted although
// no operation of the registry calls them, because the deployed service needs
// them. Keep it minimal and say why for each.
var notCalledByTheCode = map[string]map[string]string{
	"ResponderLambdaRole": {
		// The Lambda runtime writes the function's logs with the execution
		// role into the log group the stack creates (LoggingConfig.LogGroup).
		"logs:CreateLogStream": "Lambda runtime: log stream per execution environment",
		"logs:PutLogEvents":    "Lambda runtime: function logs",
	},
}

// Every IAM action the code needs is granted to the role that runs it, and
// every action granted to those roles is needed: the list comes from the
// operation registry (cloud.Operations, derived from the interfaces the code
// calls through) plus the actions AWS checks besides them (cloud.Permissions).
func TestPermissionCoverage(t *testing.T) {
	perms := cloud.Permissions()
	if len(perms) == 0 {
		t.Fatal("cloud.Permissions() is empty")
	}
	for _, er := range engineRoles {
		t.Run(er.role, func(t *testing.T) {
			granted, err := load(t, er.template).AllowedActions(er.role)
			if err != nil {
				t.Fatal(err)
			}
			for _, account := range er.accounts {
				if len(forAccounts(perms, account)) == 0 {
					t.Fatalf("no operation of account %q in cloud.Permissions()", account)
				}
			}
			for api := range er.neverCalls {
				if !isOperationOf(api, er.accounts) {
					t.Errorf("%s's neverCalls lists %s, which is no operation of accounts %v: remove the entry", er.role, api, er.accounts)
				}
			}
			needed := withoutOperations(forAccounts(perms, er.accounts...), er.neverCalls)
			for _, p := range coverageProblems(granted, needed, notCalledByTheCode[er.role]) {
				t.Errorf("%s: %s %s", er.template, er.role, p)
			}
		})
	}
}

// The coverage fails both ways, on the real template and registry: a grant
// the code needs but the role lacks, and a grant the role holds but no
// operation needs. Each registry account of the Lambda role counts: checked
// against one of them only, the role holds grants nobody needs.
func TestPermissionCoverageFailsBothWays(t *testing.T) {
	perms := cloud.Permissions()
	granted, err := load(t, forensicsTemplate).AllowedActions("ResponderLambdaRole")
	if err != nil {
		t.Fatal(err)
	}
	allowed := notCalledByTheCode["ResponderLambdaRole"]
	all := forAccounts(perms, cloud.EvidenceAccount, cloud.Investigation, cloud.LambdaFunction)
	needed := withoutOperations(all, lambdaNeverCalls)
	if p := coverageProblems(granted, needed, allowed); len(p) != 0 {
		t.Fatalf("the template itself fails: %v", p)
	}

	cases := []struct {
		name    string
		granted []string
		needed  []cloud.Permission
		want    []string
	}{
		{
			name:    "a needed grant is missing",
			granted: without(granted, "states:DescribeExecution"),
			needed:  needed,
			want:    []string{"is not granted states:DescribeExecution"},
		},
		{
			name:    "the code calls an operation nobody granted",
			granted: granted,
			needed:  append(append([]cloud.Permission{}, needed...), cloud.Permission{Action: "states:StopExecution", Account: cloud.LambdaFunction, For: []string{"states:StopExecution"}}),
			want:    []string{"is not granted states:StopExecution"},
		},
		{
			name:    "a grant nobody needs",
			granted: append(append([]string{}, granted...), "ec2:DeleteSnapshot"),
			needed:  needed,
			want:    []string{"is granted ec2:DeleteSnapshot, which no operation"},
		},
		{
			name:    "the lambda operations checked as evidence only",
			granted: granted,
			needed:  withoutOperations(forAccounts(perms, cloud.EvidenceAccount), lambdaNeverCalls),
			want: []string{"is granted securityhub:BatchUpdateFindings, which no operation",
				"is granted states:StartExecution, which no operation"},
		},
		{
			name:    "the member role's assumption not granted",
			granted: without(granted, "sts:AssumeRole"),
			needed:  needed,
			want:    []string{"is not granted sts:AssumeRole"},
		},
		{
			// The function runs the memory capture (the collect task):
			// without the multipart grants its role falls short.
			name:    "the function's role without the collection's multipart grants",
			granted: without(without(granted, "s3:AbortMultipartUpload"), "s3:ListMultipartUploadParts"),
			needed:  all,
			want: []string{"is not granted s3:AbortMultipartUpload",
				"is not granted s3:ListMultipartUploadParts"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := strings.Join(coverageProblems(c.granted, c.needed, allowed), "\n")
			for _, w := range c.want {
				if !strings.Contains(problems, w) {
					t.Errorf("no problem mentions %q; problems:\n%s", w, problems)
				}
			}
		})
	}
}

// withoutOperations returns perms without the given operations (API names,
// "s3:ListParts"): an action stays needed while another operation needs it
// (s3:PutObject, for the multipart calls, also serves PutObject).
func withoutOperations(perms []cloud.Permission, apis map[string]string) []cloud.Permission {
	var out []cloud.Permission
	for _, p := range perms {
		var keep []string
		for _, api := range p.For {
			if _, drop := apis[api]; !drop {
				keep = append(keep, api)
			}
		}
		if len(keep) > 0 {
			p.For = keep
			out = append(out, p)
		}
	}
	return out
}

// isOperationOf reports whether api is an operation of the registry under
// one of the accounts.
func isOperationOf(api string, accounts []string) bool {
	for _, op := range cloud.Operations() {
		if op.API == api && contains(accounts, op.Account) {
			return true
		}
	}
	return false
}

// forAccounts returns the permissions of the given registry accounts.
func forAccounts(perms []cloud.Permission, accounts ...string) []cloud.Permission {
	var out []cloud.Permission
	for _, p := range perms {
		if contains(accounts, p.Account) {
			out = append(out, p)
		}
	}
	return out
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if !strings.EqualFold(s, drop) {
			out = append(out, s)
		}
	}
	return out
}

// coverageProblems compares what a role is granted with what the code needs
// (IAM actions ignore case): every needed action must be granted, every
// granted action needed or listed in allowed (with its reason), and every
// entry of allowed granted and not needed. The problems are sorted.
func coverageProblems(granted []string, needed []cloud.Permission, allowed map[string]string) []string {
	neededSet := map[string]cloud.Permission{}
	for _, p := range needed {
		neededSet[strings.ToLower(p.Action)] = p
	}
	grantedSet := map[string]bool{}
	for _, a := range granted {
		grantedSet[strings.ToLower(a)] = true
	}
	var out []string
	for action, p := range neededSet {
		if !grantedSet[action] {
			out = append(out, "is not granted "+p.Action+" (for "+strings.Join(p.For, ", ")+")")
		}
	}
	for _, a := range granted {
		if _, ok := neededSet[strings.ToLower(a)]; ok {
			continue
		}
		if _, ok := allowed[a]; ok {
			continue
		}
		out = append(out, "is granted "+a+", which no operation in responder/cloud's registry needs "+
			"(remove the grant, or add the operation to the registry)")
	}
	for a := range allowed {
		if !grantedSet[strings.ToLower(a)] {
			out = append(out, "is not granted "+a+", which notCalledByTheCode lists: remove the entry")
		}
		if _, ok := neededSet[strings.ToLower(a)]; ok {
			out = append(out, "needs "+a+", which notCalledByTheCode lists too: remove the entry")
		}
	}
	sort.Strings(out)
	return out
}

// Operations that IAM does not authorise are not granted either (a grant of
// them would be dead weight).
func TestNoGrantForFreeOperations(t *testing.T) {
	for _, er := range engineRoles {
		granted, err := load(t, er.template).AllowedActions(er.role)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range granted {
			if why, ok := cloud.RequiresNoPermission[a]; ok {
				t.Errorf("%s grants %s, which needs no permission: %s", er.role, a, why)
			}
		}
	}
}
