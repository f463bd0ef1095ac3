package cloudformation

import (
	"sort"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/cloud"
)

// engineRoles are the roles that run the engine, by template: each must be
// granted exactly the IAM actions cloud.Permissions lists for its account.
var engineRoles = []struct {
	template, role, account string
}{
	{memberTemplate, "ResponderMemberRole", cloud.WorkloadAccount},
	{forensicsTemplate, "ResponderRole", cloud.EvidenceAccount},
	{forensicsTemplate, "ResponderLambdaRole", cloud.EvidenceAccount},
}

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

// Every IAM action the engine needs is granted to the role that runs it, and
// every action granted to those roles is needed: the list comes from the
// operation registry (cloud.Operations, derived from the interfaces the code
// calls through) plus the actions AWS checks besides them (cloud.Permissions).
func TestPermissionCoverage(t *testing.T) {
	perms := cloud.Permissions()
	if len(perms) == 0 {
		t.Fatal("cloud.Permissions() is empty")
	}
	templates := map[string]*Template{}
	for _, er := range engineRoles {
		t.Run(er.role, func(t *testing.T) {
			tmpl, ok := templates[er.template]
			if !ok {
				tmpl = load(t, er.template)
				templates[er.template] = tmpl
			}
			granted, err := tmpl.AllowedActions(er.role)
			if err != nil {
				t.Fatal(err)
			}
			needed := map[string]cloud.Permission{} // by lower-case action (IAM actions ignore case)
			for _, p := range perms {
				if p.Account == er.account {
					needed[strings.ToLower(p.Action)] = p
				}
			}
			if len(needed) == 0 {
				t.Fatalf("no operation of account %q in cloud.Permissions()", er.account)
			}
			grantedSet := map[string]bool{}
			for _, a := range granted {
				grantedSet[strings.ToLower(a)] = true
			}
			var missing []string
			for action, p := range needed {
				if !grantedSet[action] {
					missing = append(missing, p.Action+" (for "+strings.Join(p.For, ", ")+")")
				}
			}
			sort.Strings(missing)
			for _, m := range missing {
				t.Errorf("%s: %s is not granted %s", er.template, er.role, m)
			}
			allowed := notCalledByTheCode[er.role]
			for _, a := range granted {
				if _, ok := needed[strings.ToLower(a)]; ok {
					continue
				}
				if _, ok := allowed[a]; ok {
					continue
				}
				t.Errorf("%s: %s is granted %s, which no operation in responder/cloud's registry needs "+
					"(remove the grant, or add the operation to the registry)", er.template, er.role, a)
			}
			for a := range allowed {
				if !grantedSet[strings.ToLower(a)] {
					t.Errorf("notCalledByTheCode lists %s for %s, which is not granted: remove the entry", a, er.role)
				}
				if _, ok := needed[strings.ToLower(a)]; ok {
					t.Errorf("notCalledByTheCode lists %s for %s, but the code needs it: remove the entry", a, er.role)
				}
			}
		})
	}
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
