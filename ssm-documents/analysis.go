package ssmdocuments

// The analysis documents run on the analysis instance of an investigation
// workspace (responder investigate), in the forensics account: the forensics
// stack creates them (cloudformation/forensics-account.yaml, section
// "Investigation environment"), never the member documents stack.
const (
	AnalysisMount = "Responder-AnalysisMount"
	AnalysisFetch = "Responder-AnalysisFetch"
)

// Patterns of the analysis documents' parameters. Like the others, none
// admits a quote, whitespace or a character a shell gives meaning to.
const (
	// PatternVolumes admits 1 to 16 "vol-ID:/dev/NAME" entries, comma-separated:
	// a working volume and the device name it was attached as (sdf-sdp,
	// xvdf-xvdp; loop devices for the tests that run the script for real).
	PatternVolumes   = `^vol-[0-9a-f]{8,17}:/dev/(sd[f-p]|xvd[f-p]|loop[0-9]{1,3})(,vol-[0-9a-f]{8,17}:/dev/(sd[f-p]|xvd[f-p]|loop[0-9]{1,3})){0,15}$`
	PatternMountRoot = `^/mnt/[a-z0-9-]{1,32}$`
	PatternBucket    = `^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`
	// PatternCaseKey admits an object key under cases/<case-id>/; the script
	// checks that the case is the command's and that no segment is "..".
	PatternCaseKey = `^cases/[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9._/-]{1,900}$`
	PatternDest    = `^/analysis/[a-z0-9-]{1,32}$`
)

// MountSchema and FetchSchema are the reports' schemas.
const (
	MountSchema = "responder.analysis-mount/1"
	FetchSchema = "responder.analysis-fetch/1"
)

var analysisDocuments = []Document{
	{
		Name:     AnalysisMount,
		Platform: "Linux",
		StepName: "mountReadOnly",
		Description: "Responder: set the working volumes of an investigation read-only in the kernel and mount " +
			"their filesystems without journal replay (ext4 ro,noload; XFS ro,norecovery; NTFS ntfs-3g ro; LVM " +
			"activated read-only), reporting each device's write counters (and optionally SHA-256) before and after.",
		Parameters: []Parameter{
			caseID,
			{Name: "Volumes", Var: "RESPONDER_VOLUMES", AllowedPattern: PatternVolumes,
				Description: "vol-ID:/dev/NAME entries, comma-separated: each working volume and its attachment device name."},
			{Name: "MountRoot", Var: "RESPONDER_MOUNT_ROOT", Default: "/mnt/evidence", AllowedPattern: PatternMountRoot,
				Description: "Mounts go to MountRoot/<volume ID>/<partition>."},
			{Name: "HashDevices", Var: "RESPONDER_HASH_DEVICES", Default: "false", AllowedPattern: `^(true|false)$`,
				Description: "true: also SHA-256 every device before and after mounting (reads it whole)."},
			timeout("1800"),
		},
		Scripts:          []string{"scripts/responder-common.sh", "scripts/analysis-mount.sh"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     MountSchema,
	},
	{
		Name:     AnalysisFetch,
		Platform: "Linux",
		StepName: "fetchMemoryImage",
		Description: "Responder: copy the case's memory image from the evidence bucket onto the analysis instance " +
			"(with its instance profile, which reads only its case) and check it against the recorded SHA-256.",
		Parameters: []Parameter{
			caseID,
			{Name: "Bucket", Var: "RESPONDER_BUCKET", AllowedPattern: PatternBucket,
				Description: "The evidence bucket."},
			{Name: "Key", Var: "RESPONDER_KEY", AllowedPattern: PatternCaseKey,
				Description: "The memory image's key, under cases/<CaseId>/."},
			{Name: "Sha256", Var: "RESPONDER_SHA256", AllowedPattern: PatternSHA256,
				Description: "The SHA-256 the case records for the stored image."},
			{Name: "Encoding", Var: "RESPONDER_ENCODING", Default: "none", AllowedPattern: `^(none|zstd|gzip)$`,
				Description: "The stored image's compression; it is also decoded next to it."},
			{Name: "Destination", Var: "RESPONDER_DEST", Default: "/analysis/memory", AllowedPattern: PatternDest,
				Description: "Directory for the image on the instance."},
			timeout("7200"),
		},
		Scripts:          []string{"scripts/responder-common.sh", "scripts/analysis-fetch.sh"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     FetchSchema,
	},
}

// AnalysisDocuments returns the specs of the analysis documents (forensics
// account); Documents returns the member accounts' documents.
func AnalysisDocuments() []Document {
	out := make([]Document, len(analysisDocuments))
	copy(out, analysisDocuments)
	return out
}

// allDocuments is every document this package renders.
func allDocuments() []Document { return append(Documents(), AnalysisDocuments()...) }
