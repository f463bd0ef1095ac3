package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/investigate"
)

// investigateOptions are the inputs of `responder investigate`.
type investigateOptions struct {
	investigate.Request
	Groups      cli.StringSlice
	Stop        bool
	Shell       bool
	WorkspaceID string
	Output      outputOptions
	Verbose     bool
	AWS         awsOptions
	Store       storeOptions
}

// lookPath finds the session manager plugin (tests replace it).
var lookPath = defaultLookPath

var defaultLookPath = exec.LookPath

func investigateCommand(s *streams, d deps) *cli.Command {
	o := &investigateOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to investigate", Required: true, Destination: &o.CaseID},
		&cli.StringFlag{Name: "subnet-id", Usage: "private subnet of the analysis VPC (the forensics stack's AnalysisSubnetIds output)", Destination: &o.SubnetID, EnvVars: []string{"RESPONDER_ANALYSIS_SUBNET"}},
		&cli.StringFlag{Name: "ami-id", Usage: "the analysis image (SSM Agent, aws CLI; Volatility 3 and plaso for the analysis jobs)", Destination: &o.AMIID, EnvVars: []string{"RESPONDER_ANALYSIS_AMI"}},
		&cli.StringFlag{Name: "instance-type", Usage: "instance type of the analysis instance", Value: investigate.DefaultInstanceType, Destination: &o.InstanceType},
		&cli.StringFlag{Name: "instance-profile", Usage: "analysis instance profile (name or ARN)", Value: investigate.DefaultInstanceProfile, Destination: &o.InstanceProfile},
		&cli.StringFlag{Name: "analysis-role", Usage: "the profile's role, which gets the workspace's evidence policy (default: the profile's name, as the forensics stack names both)", Destination: &o.AnalysisRole},
		&cli.StringSliceFlag{Name: "security-group-id", Usage: "security group of the analysis instance (the stack's AnalysisSecurityGroupId: no ingress); repeatable", Destination: &o.Groups},
		&cli.StringFlag{Name: "kms-key", Usage: "KMS key of the working volumes (default: the key of the snapshot copies)", Destination: &o.KMSKeyID},
		&cli.BoolFlag{Name: "new", Usage: "start another workspace although the case has one", Destination: &o.New},
		&cli.BoolFlag{Name: "hash-devices", Usage: "also SHA-256 every device before and after mounting (reads each volume whole)", Destination: &o.HashDevices},
		&cli.BoolFlag{Name: "volatility", Usage: "run Volatility 3 of the image on the memory image (outputs become case artifacts under analysis/)", Destination: &o.Volatility},
		&cli.BoolFlag{Name: "plaso", Usage: "run plaso (log2timeline, psort) of the image on the read-only mounts (give a --timeout long enough)", Destination: &o.Plaso},
		&cli.BoolFlag{Name: "stop", Usage: "tear the workspace down: delete its working volumes, terminate its instance", Destination: &o.Stop},
		&cli.StringFlag{Name: "workspace-id", Usage: "with --stop: the workspace (ws-NNN; default the newest not stopped)", Destination: &o.WorkspaceID},
		&cli.BoolFlag{Name: "shell", Usage: "open a Session Manager session to the workspace's instance (prints the command without session-manager-plugin)", Destination: &o.Shell},
		&cli.DurationFlag{Name: "timeout", Usage: "give up waiting after this long", Value: investigate.DefaultTimeout, Destination: &o.Timeout},
		&cli.DurationFlag{Name: "poll-interval", Usage: "time between two looks at something in progress", Value: investigate.DefaultPoll, Destination: &o.PollInterval},
		outputFlag(&o.Output), queryFlag(&o.Output),
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log to standard error", Destination: &o.Verbose},
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:  "investigate",
		Usage: "mount the case's snapshot copies read-only on a fresh analysis instance in the forensics account",
		UsageText: "responder investigate --case-id ID --subnet-id SUBNET --ami-id AMI [--instance-type T] [--new]\n" +
			"    [--instance-profile P] [--analysis-role R] [--security-group-id SG] [--kms-key K] [--hash-devices] [--volatility] [--plaso]\n" +
			"    [--evidence-bucket B | --evidence-dir DIR] [--output table|json|text]\n" +
			"responder investigate --case-id ID --stop [--workspace-id ws-NNN]\n" +
			"responder investigate --case-id ID --shell",
		Description: "With your own credentials, in the forensics account: launches one analysis instance (IMDSv2,\n" +
			"tagged responder:case-id and responder:workspace-id), restores one volume from each completed\n" +
			"snapshot copy of the case in the instance's Availability Zone, encrypted, attaches them and\n" +
			"runs Responder-AnalysisMount: every device is set read-only in the kernel, then mounted\n" +
			"without journal replay (ext4 ro,noload; XFS ro,norecovery; NTFS ntfs-3g ro; LVM read-only),\n" +
			"and its write counters are compared before and after. The case's memory image is copied onto\n" +
			"the instance (Responder-AnalysisFetch) and checked against its recorded SHA-256. With the case\n" +
			"in the evidence bucket, right after the launch an inline policy responder-analysis-<case>-<ws>\n" +
			"on the analysis role lets that instance alone (ec2:SourceInstanceARN) read cases/<case-id>/ and\n" +
			"write cases/<case-id>/analysis/; it is read back, recorded, and deleted by --stop. IAM holds\n" +
			"10,240 characters of inline policy per role (about eight workspaces at once): past that the\n" +
			"workspace is incomplete and fetches nothing. The workspace is recorded in the case (an\n" +
			"\"investigation\" entry); it is \"ready\" only when every part was proven. A case without a\n" +
			"completed copy is refused, and so is a second workspace unless --new.\n" +
			"--volatility and --plaso run those tools of the analysis image (Responder-AnalysisJob); each\n" +
			"output and each run's stderr or log is stored once under analysis/<workspace>/ of the case,\n" +
			"read back and recorded with its SHA-256; a run that exits non-zero fails the job; a tool\n" +
			"missing on the image is reported as skipped. Volatility 3 runs --offline (the analysis VPC has\n" +
			"no internet): the kernel's symbol tables must be on the image under /opt/volatility3/symbols\n" +
			"(banners.Banners, run first, names the kernel). The memory image and the\n" +
			"outputs need the case in the evidence bucket (--evidence-bucket): the instance cannot reach a\n" +
			"local folder. --shell opens a Session Manager session to the workspace's instance through the\n" +
			"AWS CLI, or prints the command when session-manager-plugin is not installed.\n" +
			"--stop deletes the workspace's evidence policy, detaches and deletes the working volumes\n" +
			"(never a snapshot copy) and terminates the instance, read back and recorded; a workspace a\n" +
			"stopped run did not record is found by its tags.\n\n" +
			"EXIT CODES:\n" +
			"   0  workspace ready (or stopped, with --stop)\n" +
			"   1  the workspace is incomplete (see PROBLEMS), or the record was not saved\n" +
			"   2  bad input (nothing was called)\n" +
			"   4  could not start: case not found, no completed copy, a workspace exists (--new),\n" +
			"      no workspace to stop or to open a shell on",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			o.SecurityGroupIDs = o.Groups.Value()
			return runInvestigate(c, s, d, o)
		},
	}
}

func runInvestigate(c *cli.Context, s *streams, d deps, o *investigateOptions) error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if o.Stop && o.Shell {
		return exitf(exitUsage, "--stop and --shell exclude each other")
	}
	if !o.Stop && !o.Shell {
		if err := o.Request.Validate(); err != nil {
			return exitf(exitUsage, "%v", err)
		}
	}
	stop := investigate.StopRequest{CaseID: o.CaseID, WorkspaceID: o.WorkspaceID, PollInterval: o.PollInterval, Timeout: o.Timeout}
	if o.Stop {
		if err := stop.Validate(); err != nil {
			return exitf(exitUsage, "%v", err)
		}
	}
	clients, err := loadClients(c.Context, d, cloud.Options{Region: o.AWS.Region, Profile: o.AWS.Profile, SessionName: sessionName(o.CaseID)})
	if err != nil {
		return err
	}
	iv := investigate.New(clients, o.Store.store(clients))
	iv.Log, iv.Now = logger(s, o.Verbose), d.now
	if o.Shell {
		return openShell(c.Context, s, iv, o.CaseID, clients.Region)
	}
	var res *investigate.Result
	if o.Stop {
		res, err = iv.Stop(c.Context, stop)
	} else {
		res, err = iv.Start(c.Context, o.Request)
	}
	if err := caseStartError(o.CaseID, err); err != nil {
		return err
	}
	if err := printWorkspace(s, o.Output, res); err != nil {
		return exitf(exitContainmentFailed, "print result: %v", err)
	}
	if res.SaveErr != nil {
		keepRecord(s, res.Manifest)
	}
	if res.Err != nil {
		return &exitError{code: 1, err: fmt.Errorf("case %s: workspace %s %s: %v", o.CaseID, res.Workspace.ID, res.Workspace.State, res.Err)}
	}
	return nil
}

// openShell starts a Session Manager session to the workspace's instance
// with the AWS CLI (which needs session-manager-plugin), or prints the
// command when the plugin is not installed.
func openShell(ctx context.Context, s *streams, iv *investigate.Investigator, caseID, region string) error {
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	rec, err := evidence.LoadRecord(ctx, iv.Store, caseID)
	if err != nil || rec.Manifest == nil {
		return exitf(exitCannotStart, "case %s not found: %v", caseID, err)
	}
	var ws *evidence.Workspace
	for _, w := range investigate.Workspaces(rec.Manifest) {
		if w.State != evidence.WorkspaceStopped && w.InstanceID != "" {
			ws = &w
		}
	}
	if ws == nil {
		return exitf(exitCannotStart, "case %s: %v", caseID, investigate.ErrNoWorkspace)
	}
	args := []string{"ssm", "start-session", "--target", ws.InstanceID, "--region", region}
	command := "aws " + strings.Join(args, " ")
	if _, err := lookPath("session-manager-plugin"); err != nil {
		fmt.Fprintf(s.Out, "session-manager-plugin is not installed; with it, run:\n  %s\n", command)
		return nil
	}
	fmt.Fprintf(s.Err, "responder: %s (workspace %s; the session is logged by Session Manager)\n", command, ws.ID)
	cmd := exec.CommandContext(ctx, "aws", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return exitf(exitContainmentFailed, "%s: %v", command, err)
	}
	return nil
}

// investigateOutput is what --output json prints.
type investigateOutput struct {
	CaseID    string             `json:"case_id"`
	Run       int                `json:"run"`
	Location  string             `json:"location"`
	Workspace evidence.Workspace `json:"workspace"`
}

func printWorkspace(s *streams, o outputOptions, res *investigate.Result) error {
	m, ws := res.Manifest, res.Workspace
	return o.print(s, result{
		value: investigateOutput{CaseID: m.CaseID, Run: m.LastRun(), Location: m.Location, Workspace: ws},
		table: func(w io.Writer) error { return workspaceTable(w, res) },
		text: func(t *textWriter) {
			t.line("WORKSPACE", m.CaseID, fmt.Sprint(m.LastRun()), ws.ID, ws.State, ws.InstanceID, ws.InstanceState, m.Location)
			for _, v := range ws.Volumes {
				t.line("VOLUME", v.SnapshotID, v.VolumeID, v.Device, v.State, v.Error)
			}
			for _, mt := range ws.Mounts {
				t.line("MOUNT", mt.VolumeID, mt.FSType, mt.MountPoint, mt.Options, mt.WritesBefore, mt.WritesAfter, fmt.Sprint(mt.Unchanged))
			}
			for _, p := range ws.Problems {
				t.line("PROBLEM", p)
			}
		},
	})
}

func workspaceTable(w io.Writer, res *investigate.Result) error {
	m, ws := res.Manifest, res.Workspace
	fmt.Fprintf(w, "Case       %s (run %d)\n", m.CaseID, m.LastRun())
	fmt.Fprintf(w, "Workspace  %s: %s\n", ws.ID, paint(w, workspaceStateText(ws.State)))
	fmt.Fprintf(w, "Instance   %s (%s, %s, %s, %s)\n", dash(ws.InstanceID), dash(ws.InstanceState), ws.InstanceType, ws.AMIID, dash(ws.AvailabilityZone))
	fmt.Fprintf(w, "Evidence   %s\n\n", m.Location)
	t := newTable(w, "COPY", "VOLUME", "DEVICE", "STATE", "DETAIL")
	for _, v := range ws.Volumes {
		if err := t.Append([]string{v.SnapshotID, dash(v.VolumeID), v.Device, v.State, v.Error}); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	if len(ws.Mounts) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "VOLUME", "FS", "MOUNT POINT", "OPTIONS", "WRITES BEFORE/AFTER", "UNCHANGED")
		for _, mt := range ws.Mounts {
			if err := t.Append([]string{mt.VolumeID, mt.FSType, mt.MountPoint, mt.Options, mt.WritesBefore + " / " + mt.WritesAfter, fmt.Sprint(mt.Unchanged)}); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if ws.Memory != nil {
		fmt.Fprintf(w, "\nMemory     %s -> %s (SHA-256 matches the record: %v)\n", ws.Memory.Artifact, dash(ws.Memory.Path), ws.Memory.Matches)
	}
	for _, p := range ws.Problems {
		fmt.Fprintf(w, "PROBLEM    %s\n", p)
	}
	return nil
}

func workspaceStateText(s string) string {
	switch s {
	case evidence.WorkspaceReady:
		return "READY: every volume attached, mounted read-only and proven unwritten"
	case evidence.WorkspaceIncomplete:
		return "INCOMPLETE: see the problems below"
	case evidence.WorkspaceStopped:
		return "STOPPED: working volumes deleted and instance terminated (read back); the snapshot copies are kept"
	case evidence.WorkspaceStopIncomplete:
		return "STOP INCOMPLETE: see the problems below"
	}
	return s
}
