package main

import "strings"

// example is one invocation shown in a command's --help: what it does, and
// the command line. TestHelpExamplesParse runs every one through the parser.
type example struct {
	about string
	line  string
}

// commandExamples are the EXAMPLES of each command, by its path. release
// keeps its own in its description.
var commandExamples = map[string][]example{
	"respond": {
		{"with your AWS profile; the case goes to ./cases/<case-id>/", "responder respond --instance-id i-0123456789abcdef0 --region eu-west-1 --profile ir"},
		{"the flags of a named environment of the config file (responder config show --env prod)", "responder respond -i i-0123456789abcdef0 --env prod"},
		{"what would happen, with EC2's DryRun permission checks; nothing changed or stored", "responder respond --instance-id i-0123456789abcdef0 --dry-run"},
		{"evidence in the forensics account's bucket, the instance in another account", "responder respond --instance-id i-0123456789abcdef0 --region eu-west-1 " +
			"--role-arn arn:aws:iam::111122223333:role/responder-member --external-id \"$EXTERNAL_ID\" " +
			"--evidence-bucket forensics-evidence-444455556666 --topic-arn arn:aws:sns:eu-west-1:444455556666:responder"},
		{"memory and volatile data too, through SSM", "responder respond --instance-id i-0123456789abcdef0 --playbook collect " +
			"--evidence-bucket forensics-evidence-444455556666 " +
			"--forensic-profile arn:aws:iam::111122223333:instance-profile/responder/responder-ir-member-forensic-ssm " +
			"--staging-bucket responder-staging-444455556666"},
		{"the names of the steps that failed, for a script", "responder respond -i i-0123456789abcdef0 --output text --query 'steps[?status==`failed`].name'"},
		{"a fleet: every instance tagged app=web in two Regions, one case each; shows the plan, --yes acts on it", "responder respond --filter tag:app=web --region eu-west-1,us-east-1 --fleet-id fleet-worm-1 --yes"},
		{"the EC2 instances of Security Hub findings, in the accounts they are in", "responder respond --findings findings.json " +
			"--accounts 111122223333,444455556666 --role-arn 'arn:aws:iam::{account}:role/responder-ir-member' --yes"},
		{"continue a fleet: contained instances are left alone, the others continue their case", "responder respond --fleet-id fleet-worm-1 --filter tag:app=web --region eu-west-1,us-east-1 --yes"},
	},
	"status": {
		{"the record of a case: who ran each run, every step, the evidence", "responder status --case-id case-20261123-093012-1a2b3c4d"},
		{"the case status alone", "responder status --case-id case-20261123-093012-1a2b3c4d --output text --query status"},
		{"from the forensics bucket, as JSON", "responder status --case-id case-20261123-093012-1a2b3c4d --evidence-bucket forensics-evidence-444455556666 --output json"},
		{"a fleet: every target, its case and outcome", "responder status --fleet-id fleet-worm-1"},
		{"the instances of a fleet that are not contained", "responder status --fleet-id fleet-worm-1 --output text --query 'cases[?status!=`contained`].instance_id'"},
	},
	"verify": {
		{"a local case, without AWS access", "responder verify --case-id case-20261123-093012-1a2b3c4d --no-snapshots"},
		{"a case in the forensics bucket, snapshots included", "responder verify --case-id case-20261123-093012-1a2b3c4d --evidence-bucket forensics-evidence-444455556666 --region eu-west-1"},
		{"the checks that did not pass", "responder verify --case-id case-20261123-093012-1a2b3c4d --no-snapshots --output json --query 'checks[?status!=`ok`]'"},
	},
	"hold": {
		{"a legal hold on every object of the case", "responder hold --case-id case-20261123-093012-1a2b3c4d --evidence-bucket forensics-evidence-444455556666"},
	},
	"unhold": {
		{"lift it, with the data custodian's credentials", "responder unhold --case-id case-20261123-093012-1a2b3c4d --evidence-bucket forensics-evidence-444455556666 --profile custodian"},
	},
	"cases": {
		{"the cases of ./cases, newest first", "responder cases list"},
	},
	"cases list": {
		{"the cases of ./cases, newest first", "responder cases list"},
		{"the IDs of the cases of a bucket that are not contained", "responder cases list --evidence-bucket forensics-evidence-444455556666 --output text --query '[?status!=`contained`].case_id'"},
	},
	"preserve": {
		{"copy the snapshots into the forensics account and wait for the copies", "responder preserve --case-id case-20261123-093012-1a2b3c4d " +
			"--role-arn arn:aws:iam::111122223333:role/responder-member --forensics-account 444455556666 " +
			"--forensics-kms-key arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab --wait --timeout 2h"},
	},
	"report": {
		{"one self-contained HTML file to attach to a ticket", "responder report --case-id case-20261123-093012-1a2b3c4d --format html --out case.html"},
		{"verify the evidence first: the headline then says VERIFIED (or why not)", "responder report --case-id case-20261123-093012-1a2b3c4d --verify --format html --out case-verified.html"},
		{"Markdown on standard output", "responder report --case-id case-20261123-093012-1a2b3c4d"},
	},
	"playbooks": {
		{"the playbooks respond can run", "responder playbooks"},
		{"one playbook's trade-off and steps", "responder playbooks show collect-before-isolate"},
	},
	"playbooks list": {
		{"the names alone", "responder playbooks list --output text --query '[].name'"},
	},
	"playbooks show": {
		{"an embedded playbook", "responder playbooks show collect"},
		{"a playbook file of your own, as JSON", "responder playbooks show --output json ./my-playbook.yaml"},
	},
	"config": {
		{"what --env prod gives each flag, and from where", "responder config show --env prod"},
	},
	"config show": {
		{"the settings of the environment prod", "responder config show --env prod"},
		{"the evidence bucket alone", "responder config show --env prod --output text --query \"settings[?key=='evidence_bucket'].value\""},
	},
	"completion": {
		{"completion in this bash session", "responder completion bash"},
		{"for fish, saved where fish looks", "responder completion fish"},
	},
	"investigate": {
		{"a workspace on the case's snapshot copies, in the forensics account", "responder investigate --case-id case-20261123-093012-1a2b3c4d " +
			"--subnet-id subnet-0123456789abcdef0 --ami-id ami-0123456789abcdef0 --evidence-bucket forensics-evidence-444455556666"},
		{"a shell on its instance (Session Manager)", "responder investigate --case-id case-20261123-093012-1a2b3c4d --shell --evidence-bucket forensics-evidence-444455556666"},
		{"delete the working volumes and terminate the instance; the copies are kept", "responder investigate --case-id case-20261123-093012-1a2b3c4d --stop --evidence-bucket forensics-evidence-444455556666"},
	},
	"image": {
		{"raw disk images of the case's snapshot copies, through the EBS direct APIs", "responder image --case-id case-20261123-093012-1a2b3c4d --evidence-bucket forensics-evidence-444455556666"},
		{"one copy, uncompressed", "responder image --case-id case-20261123-093012-1a2b3c4d --snapshot snap-0123456789abcdef0 --compress none --evidence-bucket forensics-evidence-444455556666"},
	},
	"help": {
		{"the help of a command", "responder help respond"},
	},
}

// examplesHelp is the EXAMPLES section of a command's help. A long command
// line is continued on the next line at a flag.
func examplesHelp(xs []example) string {
	var b strings.Builder
	b.WriteString("EXAMPLES:\n")
	for i, x := range xs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("   # " + x.about + "\n")
		b.WriteString("   " + continued(x.line, 95) + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// continued breaks a command line before a flag when the line would pass
// width, with a backslash as a shell would take it.
func continued(line string, width int) string {
	var b strings.Builder
	n := 0
	words := strings.Split(line, " ")
	for i, w := range words {
		if i > 0 {
			if strings.HasPrefix(w, "-") && n+1+len(w)+nextValue(words, i) > width {
				b.WriteString(" \\\n     ")
				n = 5
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// nextValue is the length of the value after the flag at words[i], if any.
func nextValue(words []string, i int) int {
	if i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
		return 1 + len(words[i+1])
	}
	return 0
}
