package ssmdocuments

// The analysis documents run on the analysis instance of an investigation
// workspace (responder investigate), in the forensics account: the forensics
// stack creates them (cloudformation/forensics-account.yaml, section
// "Investigation environment"), never the member documents stack.
const (
	AnalysisMount = "Responder-AnalysisMount"
	AnalysisFetch = "Responder-AnalysisFetch"
	AnalysisJob   = "Responder-AnalysisJob"
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
	// PatternAnalysisPrefix admits cases/<case-id>/analysis/<workspace>/.
	PatternAnalysisPrefix = `^cases/[A-Za-z0-9][A-Za-z0-9._-]{0,63}/analysis/ws-[0-9]{3,9}/$`
	PatternMemoryPath     = `^/analysis/[a-z0-9-]{1,32}/[a-z.-]{1,32}$`
	// PatternPlugins admits 1 to 16 Volatility 3 plugin names, comma-separated,
	// in full (module path and class: linux.pslist.PsList). vol matches a
	// name as a substring of the registered ones and refuses one that matches
	// several, so a short name can stop working when a release adds a plugin.
	PatternPlugins = `^[a-z]+(\.[A-Za-z0-9_]+){1,3}(,[a-z]+(\.[A-Za-z0-9_]+){1,3}){0,15}$`
	// PatternSymbolDirs admits none or one absolute directory (no "..": the
	// script checks) holding Volatility 3 symbol tables (ISF).
	PatternSymbolDirs = `^(none|/[A-Za-z0-9._/-]{1,200})$`
)

// DefaultLinuxPlugins are the Volatility 3 plugins the job runs on a Linux
// memory image unless told otherwise: banners.Banners first, which needs no
// symbol tables and names the kernel whose tables the others need.
const DefaultLinuxPlugins = "banners.Banners,linux.pslist.PsList,linux.bash.Bash,linux.sockstat.Sockstat"

// DefaultSymbolDirs is where the analysis image keeps Volatility 3 symbol
// tables (see ssm-documents/README.md, "Analysis jobs").
const DefaultSymbolDirs = "/opt/volatility3/symbols"

// MountSchema and FetchSchema are the reports' schemas.
const (
	MountSchema = "responder.analysis-mount/1"
	FetchSchema = "responder.analysis-fetch/1"
	JobSchema   = "responder.analysis-job/1"
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
	{
		Name:     AnalysisJob,
		Platform: "Linux",
		StepName: "runAnalysisTool",
		Description: "Responder: run Volatility 3 (offline, with the image's symbol tables) on the memory image or plaso " +
			"(log2timeline, psort) on the read-only mounts, as installed on the analysis image (a missing tool is reported " +
			"as skipped), report each run's exit status, and store each output and log once under the case's analysis/ " +
			"prefix with its SHA-256.",
		Parameters: []Parameter{
			caseID,
			{Name: "Tool", Var: "RESPONDER_TOOL", AllowedPattern: `^(volatility|plaso)$`,
				Description: "volatility or plaso."},
			{Name: "Bucket", Var: "RESPONDER_BUCKET", AllowedPattern: PatternBucket,
				Description: "The evidence bucket."},
			{Name: "Prefix", Var: "RESPONDER_PREFIX", AllowedPattern: PatternAnalysisPrefix,
				Description: "cases/<CaseId>/analysis/<workspace>/: where the outputs go."},
			{Name: "MemoryPath", Var: "RESPONDER_MEMORY", Default: "/analysis/memory/memory.lime", AllowedPattern: PatternMemoryPath,
				Description: "The memory image on the instance (Volatility 3)."},
			{Name: "MountRoot", Var: "RESPONDER_MOUNT_ROOT", Default: "/mnt/evidence", AllowedPattern: PatternMountRoot,
				Description: "The read-only mounts (plaso)."},
			{Name: "Plugins", Var: "RESPONDER_PLUGINS", Default: DefaultLinuxPlugins, AllowedPattern: PatternPlugins,
				Description: "Volatility 3 plugins, comma-separated, full names (linux.pslist.PsList)."},
			{Name: "SymbolDirs", Var: "RESPONDER_SYMBOLS", Default: DefaultSymbolDirs, AllowedPattern: PatternSymbolDirs,
				Description: "Volatility 3 symbol tables (ISF) on the analysis image, or none; Volatility runs --offline."},
			timeout("21600"),
		},
		Scripts:          []string{"scripts/responder-common.sh", "scripts/analysis-job.sh"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     JobSchema,
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
