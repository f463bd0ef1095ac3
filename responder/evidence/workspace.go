package evidence

import (
	"encoding/json"
	"time"
)

// Workspace states.
const (
	// WorkspaceReady: the instance runs, every volume is attached and every
	// mount was read back read-only with its device unwritten.
	WorkspaceReady = "ready"
	// WorkspaceIncomplete: the instance runs but some volume, attachment,
	// mount or the memory image is missing or unproven; Problems says which.
	WorkspaceIncomplete = "incomplete"
	// WorkspaceStopped: torn down, read back: the instance terminated and
	// every working volume deleted (the snapshot copies are kept).
	WorkspaceStopped = "stopped"
	// WorkspaceStopIncomplete: a teardown left something; Problems says what.
	WorkspaceStopIncomplete = "stop-incomplete"
	// WorkspaceStarting: recorded before a staged start (the Lambda's
	// investigate states) changes anything; a later entry says how it ended.
	WorkspaceStarting = "starting"
)

// Workspace is an investigation environment of a case in the forensics
// account (responder investigate): the analysis instance, the working
// volumes restored from the case's snapshot copies, their read-only mounts,
// the memory image fetched onto the instance and the analysis jobs. It is
// recorded as the after of the record-only "investigation" entries, one per
// investigate run; the newest entry for a workspace ID is its state.
type Workspace struct {
	ID               string    `json:"workspace_id"`
	CaseID           string    `json:"case_id"`
	AccountID        string    `json:"account_id,omitempty"`
	Region           string    `json:"region"`
	InstanceID       string    `json:"instance_id,omitempty"`
	InstanceState    string    `json:"instance_state,omitempty"`
	AMIID            string    `json:"ami_id"`
	InstanceType     string    `json:"instance_type"`
	SubnetID         string    `json:"subnet_id"`
	AvailabilityZone string    `json:"availability_zone,omitempty"`
	KMSKeyID         string    `json:"kms_key_id"`
	State            string    `json:"state"`
	Problems         []string  `json:"problems,omitempty"`
	Volumes          []WorkVol `json:"volumes"`
	Mounts           []Mount   `json:"mounts,omitempty"`
	// Documents are the SSM documents run, with the version and content
	// hash SSM reported.
	Documents []DocumentRun  `json:"documents,omitempty"`
	Memory    *MemoryFetch   `json:"memory,omitempty"`
	Jobs      []AnalysisJob  `json:"jobs,omitempty"`
	StartedAt time.Time      `json:"started_at"`
	StoppedAt *time.Time     `json:"stopped_at,omitempty"`
	Run       int            `json:"run"`
	Shell     *SessionAccess `json:"shell,omitempty"`
	// Access is the workspace's evidence policy on the analysis role: what
	// lets its instance, and only it, read the case's evidence in the
	// bucket. None when the case is kept in a local folder.
	Access *EvidenceAccess `json:"evidence_access,omitempty"`
	// Execution names the Step Functions execution that builds the
	// workspace (a start from the API); empty from the CLI.
	Execution string `json:"execution,omitempty"`
}

// WorkVol is one working volume: restored from a snapshot copy, attached
// to the analysis instance. The copy itself is never changed.
type WorkVol struct {
	VolumeID         string `json:"volume_id,omitempty"`
	SnapshotID       string `json:"snapshot_id"`        // the copy in the forensics account
	SourceSnapshotID string `json:"source_snapshot_id"` // the case snapshot it copies
	AvailabilityZone string `json:"availability_zone"`
	Device           string `json:"device,omitempty"`
	// State is what the last read-back showed: in-use, available, deleted.
	State     string `json:"state"`
	Encrypted bool   `json:"encrypted"`
	KMSKeyID  string `json:"kms_key_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Mount is one filesystem of a working volume as the mount document
// reported it: mounted read-only, and the device's write counters before and
// after (sectors written, from /sys/block/<dev>/stat); Unchanged only when
// they are equal and the mount was read back read-only.
type Mount struct {
	VolumeID     string `json:"volume_id"`
	Device       string `json:"device"`
	FSType       string `json:"fstype"`
	MountPoint   string `json:"mount_point,omitempty"`
	Options      string `json:"options,omitempty"`
	ReadOnly     bool   `json:"read_only"`
	WritesBefore string `json:"writes_before,omitempty"`
	WritesAfter  string `json:"writes_after,omitempty"`
	SHA256Before string `json:"sha256_before,omitempty"`
	SHA256After  string `json:"sha256_after,omitempty"`
	Unchanged    bool   `json:"unchanged"`
	Error        string `json:"error,omitempty"`
}

// DocumentRun is one SSM command of the workspace.
type DocumentRun struct {
	Name      string `json:"name"`
	Version   string `json:"version,omitempty"`
	CommandID string `json:"command_id,omitempty"`
	Status    string `json:"status"`
}

// MemoryFetch is the case's memory image copied onto the instance.
type MemoryFetch struct {
	Artifact string `json:"artifact"` // path in the case folder
	Path     string `json:"path"`     // on the instance
	SHA256   string `json:"sha256"`   // as the instance computed it
	Matches  bool   `json:"matches"`  // equal to the artifact's recorded SHA-256
	Error    string `json:"error,omitempty"`
}

// AnalysisJob is one tool run on the instance (Volatility 3, plaso); its
// outputs are artifacts of the case under analysis/.
type AnalysisJob struct {
	Tool    string        `json:"tool"`
	Status  string        `json:"status"` // ok, failed, skipped
	Reason  string        `json:"reason,omitempty"`
	Version string        `json:"version,omitempty"` // as the tool printed it
	Runs    []AnalysisRun `json:"runs,omitempty"`
	Outputs []string      `json:"outputs,omitempty"` // artifact paths
}

// AnalysisRun is one run of a tool in a job (a Volatility 3 plugin,
// log2timeline, one psort output) as the instance reported it.
type AnalysisRun struct {
	Name       string `json:"name"`
	ExitStatus int    `json:"exit_status"`
	Status     string `json:"status"`           // ok, failed
	Output     string `json:"output,omitempty"` // artifact path
	Log        string `json:"log,omitempty"`    // artifact path: its stderr or log
}

// Evidence access states.
const (
	// AccessGranted: the policy was read back on the role as written.
	AccessGranted = "granted"
	// AccessFailed: the policy was refused or not read back (Error says
	// why); the instance cannot read the case's evidence.
	AccessFailed = "failed"
	// AccessRevoked: the policy was deleted and read back gone.
	AccessRevoked = "revoked"
)

// EvidenceAccess is the inline policy responder investigate puts on the
// analysis role for one workspace (PolicyName
// responder-analysis-<case-id>-<workspace-id>): s3:GetObject and
// s3:ListBucket on cases/<case-id>/ of the evidence bucket, s3:PutObject on
// cases/<case-id>/analysis/, KMS through S3, every statement conditioned on
// ec2:SourceInstanceARN = InstanceARN. Document is the policy exactly as
// put; --stop deletes it.
type EvidenceAccess struct {
	Role        string          `json:"role"`
	PolicyName  string          `json:"policy_name"`
	InstanceARN string          `json:"instance_arn"`
	Document    json.RawMessage `json:"document"`
	State       string          `json:"state"`
	GrantedAt   *time.Time      `json:"granted_at,omitempty"`
	RevokedAt   *time.Time      `json:"revoked_at,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// SessionAccess records a Session Manager session asked for (--shell).
type SessionAccess struct {
	At      time.Time `json:"at"`
	By      string    `json:"by,omitempty"`
	Command string    `json:"command"`
	Started bool      `json:"started"`
}

// LatestWorkspaces returns every workspace recorded by the entries named
// entry (the record-only "investigation" entries), each as its newest
// entry has it, in the order they were first recorded.
func LatestWorkspaces(steps []StepRecord, entry string) []Workspace {
	var order []string
	latest := map[string]Workspace{}
	for _, s := range steps {
		if s.Name != entry || len(s.After) == 0 {
			continue
		}
		var ws Workspace
		if err := json.Unmarshal(s.After, &ws); err != nil || ws.ID == "" {
			continue
		}
		if _, seen := latest[ws.ID]; !seen {
			order = append(order, ws.ID)
		}
		latest[ws.ID] = ws
	}
	out := make([]Workspace, 0, len(order))
	for _, id := range order {
		out = append(out, latest[id])
	}
	return out
}
