// Package ssmdocuments holds the SSM Command documents that collect
// operating-system evidence (memory images and volatile data) on Linux and
// Windows instances, the scripts they run, and the Go side of their
// interface: the document specs, parameter validation, and the reports the
// instances send back. README.md in this directory describes the interface
// the engine uses.
//
// The scripts in scripts/ are the source; each document in documents/ is
// rendered from a spec here plus the scripts it embeds. After changing a
// script or a spec, regenerate the documents with
//
//	go test ./ssm-documents -run TestDocumentsUpToDate -update
package ssmdocuments

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed scripts/*.sh scripts/*.ps1
var scriptFiles embed.FS

// Document names, as created in SSM (CreateDocument Name, DocumentType Command).
const (
	LinuxMemoryCapture   = "Responder-LinuxMemoryCapture"
	LinuxVolatileData    = "Responder-LinuxVolatileData"
	WindowsMemoryCapture = "Responder-WindowsMemoryCapture"
	WindowsVolatileData  = "Responder-WindowsVolatileData"
)

// Allowed patterns shared by the documents. Every one excludes quotes,
// whitespace and every character a shell or PowerShell gives meaning to
// inside single quotes, so a value that passes cannot leave the quoted
// assignment the document puts it in.
const (
	PatternCaseID = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`
	// PatternURL admits an https URL made of the characters of a presigned S3
	// URL: host, optional port, and an RFC 3986 unreserved or percent-encoded
	// path and query.
	PatternURL          = `^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/?&=%-]*$`
	PatternURLOrNone    = `^(none|https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/?&=%-]*)$`
	PatternSHA256       = `^[a-f0-9]{64}$`
	PatternSHA256OrNone = `^([a-f0-9]{64}|none)$`
	// PatternPartSizeMiB admits 5 to 5120: S3's part size limits in MiB.
	PatternPartSizeMiB = `^([5-9]|[1-9][0-9]{1,2}|[1-4][0-9]{3}|50[0-9]{2}|51[01][0-9]|5120)$`
	// PatternTimeout admits 1 to 172800 seconds, the range of timeoutSeconds.
	PatternTimeout     = `^([1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[01][0-9]{3}|172[0-7][0-9]{2}|172800)$`
	PatternRecentDays  = `^([1-9]|[1-8][0-9]|90)$`
	PatternLimeTimeout = `^[0-9]{1,6}$`
)

// Parameter is one document parameter.
type Parameter struct {
	Name           string // document parameter name, e.g. "CaseId"
	Var            string // shell (Linux) or PowerShell (Windows) variable the wrapper assigns
	Description    string
	Default        string // used when the caller gives none; empty: required
	AllowedPattern string
	// Sealed parameters (presigned URLs) are never document parameters of
	// their own: their values reach the instance encrypted, inside the
	// Sealed parameter (sealing.go). AllowedPattern still checks them.
	Sealed bool
}

// Required reports whether the caller must give the parameter.
func (p Parameter) Required() bool { return p.Default == "" }

// Document describes one SSM Command document.
type Document struct {
	Name        string
	Platform    string // "Linux" or "Windows"
	Description string
	StepName    string
	Parameters  []Parameter
	// Scripts are embedded, in this order, into the single step. On Linux
	// they are concatenated into one bash program; on Windows there is one.
	Scripts []string
	// TimeoutParameter names the parameter that sets the step's timeoutSeconds.
	TimeoutParameter string
	// ReportSchema is the schema of the report the document prints; the
	// Windows wrapper prints a failed one itself when the sealed parameters
	// cannot be opened.
	ReportSchema string
}

var caseID = Parameter{Name: "CaseId", Var: "RESPONDER_CASE_ID", AllowedPattern: PatternCaseID,
	Description: "Case identifier; only recorded in the report."}

func timeout(def string) Parameter {
	return Parameter{Name: "ExecutionTimeout", AllowedPattern: PatternTimeout, Default: def,
		Description: "Seconds before SSM stops the step (timeoutSeconds)."}
}

var documents = []Document{
	{
		Name:     LinuxMemoryCapture,
		Platform: "Linux",
		StepName: "captureMemory",
		Description: "Responder: capture physical memory with AVML (LiME as fallback or on request), " +
			"compress it, hash it while streaming and upload it as an S3 multipart upload through presigned " +
			"UploadPart URLs. Reports the tool, the memory source, skipped or zero-filled ranges and every part's ETag.",
		Parameters: []Parameter{
			caseID,
			{Name: "Tool", Var: "RESPONDER_TOOL", Default: "auto", AllowedPattern: `^(auto|avml|lime)$`,
				Description: "auto: AVML, then LiME when AVML cannot read memory; avml or lime: only that tool."},
			{Name: "AvmlUrl", Var: "RESPONDER_AVML_URL", Sealed: true, Default: "none", AllowedPattern: PatternURLOrNone,
				Description: "Presigned GET URL of the staged avml binary for this architecture, or none."},
			{Name: "AvmlSha256", Var: "RESPONDER_AVML_SHA256", Default: "none", AllowedPattern: PatternSHA256OrNone,
				Description: "Pinned SHA-256 of the avml binary; it does not run unless the download matches."},
			{Name: "LimeUrl", Var: "RESPONDER_LIME_URL", Sealed: true, Default: "none", AllowedPattern: PatternURLOrNone,
				Description: "Presigned GET URL of lime.ko built for this instance's exact kernel, or none."},
			{Name: "LimeSha256", Var: "RESPONDER_LIME_SHA256", Default: "none", AllowedPattern: PatternSHA256OrNone,
				Description: "Pinned SHA-256 of lime.ko; it is not loaded unless the download matches."},
			{Name: "LimeTimeoutMs", Var: "RESPONDER_LIME_TIMEOUT_MS", Default: "0", AllowedPattern: PatternLimeTimeout,
				Description: "LiME slow-read timeout in ms; 0 disables it, so LiME never zero-fills a slow range."},
			{Name: "PartUrlsUrl", Var: "RESPONDER_PART_URLS_URL", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned GET URL of a text object whose line N is the presigned UploadPart URL of part N."},
			{Name: "PartSizeMiB", Var: "RESPONDER_PART_SIZE_MIB", Default: "64", AllowedPattern: PatternPartSizeMiB,
				Description: "Size of every part but the last, in MiB (5 to 5120)."},
			{Name: "Compression", Var: "RESPONDER_COMPRESSION", Default: "auto", AllowedPattern: `^(auto|zstd|gzip|none)$`,
				Description: "auto: zstd -1 when installed, else gzip -1. The report says which was used."},
			{Name: "HashCompressed", Var: "RESPONDER_HASH_COMPRESSED", Default: "on", AllowedPattern: `^(on|off)$`,
				Description: "on: hash the compressed image too; off: the raw stream only (the image is hashed where it lands)."},
			{Name: "ResultUrl", Var: "RESPONDER_RESULT_URL", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned PUT URL for the JSON report (sent with Content-MD5)."},
			timeout("21600"),
		},
		Scripts:          []string{"scripts/responder-common.sh", "scripts/stream-upload.sh", "scripts/linux-memory-capture.sh"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     "responder.linux-memory-capture/1",
	},
	{
		Name:     LinuxVolatileData,
		Platform: "Linux",
		StepName: "collectVolatileData",
		Description: "Responder: collect processes (with executable SHA-256, deleted ones included), sockets with " +
			"their processes, logins, users, kernel modules, mounts, cron, systemd, shell histories and recently " +
			"modified files; upload them as a tar.gz through a presigned PUT URL.",
		Parameters: []Parameter{
			caseID,
			{Name: "ArchiveUrl", Var: "RESPONDER_ARCHIVE_URL", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned PUT URL for the archive (tar.gz, sent with Content-MD5)."},
			{Name: "ResultUrl", Var: "RESPONDER_RESULT_URL", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned PUT URL for the JSON report (sent with Content-MD5)."},
			{Name: "RecentDays", Var: "RESPONDER_RECENT_DAYS", Default: "7", AllowedPattern: PatternRecentDays,
				Description: "Files modified within this many days (1 to 90) are listed."},
			timeout("3600"),
		},
		Scripts:          []string{"scripts/responder-common.sh", "scripts/linux-volatile-data.sh"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     "responder.linux-volatile-data/1",
	},
	{
		Name:     WindowsMemoryCapture,
		Platform: "Windows",
		StepName: "captureMemory",
		Description: "Responder: capture physical memory with WinPmem, compress it, hash it while streaming and " +
			"upload it as an S3 multipart upload through presigned UploadPart URLs.",
		Parameters: []Parameter{
			{Name: "CaseId", Var: "ResponderCaseId", AllowedPattern: PatternCaseID,
				Description: "Case identifier; only recorded in the report."},
			{Name: "WinpmemUrl", Var: "ResponderWinpmemUrl", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned GET URL of the staged WinPmem executable."},
			{Name: "WinpmemSha256", Var: "ResponderWinpmemSha256", AllowedPattern: PatternSHA256,
				Description: "Pinned SHA-256 of the WinPmem executable; it does not run unless the download matches."},
			{Name: "PartUrlsUrl", Var: "ResponderPartUrlsUrl", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned GET URL of a text object whose line N is the presigned UploadPart URL of part N."},
			{Name: "PartSizeMiB", Var: "ResponderPartSizeMiB", Default: "64", AllowedPattern: PatternPartSizeMiB,
				Description: "Size of every part but the last, in MiB (5 to 5120)."},
			{Name: "Compression", Var: "ResponderCompression", Default: "gzip", AllowedPattern: `^(gzip|none)$`,
				Description: "gzip (.NET GZipStream, fastest level) or none."},
			{Name: "ResultUrl", Var: "ResponderResultUrl", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned PUT URL for the JSON report (sent with Content-MD5)."},
			timeout("21600"),
		},
		Scripts:          []string{"scripts/windows-memory-capture.ps1"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     "responder.windows-memory-capture/1",
	},
	{
		Name:     WindowsVolatileData,
		Platform: "Windows",
		StepName: "collectVolatileData",
		Description: "Responder: collect processes (with executable SHA-256), network connections with their " +
			"processes, sessions and logons, users, drivers, services, scheduled tasks, autoruns, PowerShell " +
			"histories and recently modified files; upload them as a zip through a presigned PUT URL.",
		Parameters: []Parameter{
			{Name: "CaseId", Var: "ResponderCaseId", AllowedPattern: PatternCaseID,
				Description: "Case identifier; only recorded in the report."},
			{Name: "ArchiveUrl", Var: "ResponderArchiveUrl", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned PUT URL for the archive (zip, sent with Content-MD5)."},
			{Name: "ResultUrl", Var: "ResponderResultUrl", Sealed: true, AllowedPattern: PatternURL,
				Description: "Presigned PUT URL for the JSON report (sent with Content-MD5)."},
			{Name: "RecentDays", Var: "ResponderRecentDays", Default: "7", AllowedPattern: PatternRecentDays,
				Description: "Files modified within this many days (1 to 90) are listed."},
			timeout("3600"),
		},
		Scripts:          []string{"scripts/windows-volatile-data.ps1"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     "responder.windows-volatile-data/1",
	},
	{
		Name:     LinuxSealingKey,
		Platform: "Linux",
		StepName: "makeSealingKey",
		Description: "Responder: make an RSA key pair (3072 bits, kept in memory-backed storage) for the next " +
			"command's sealed parameters, and print its public key. The command that uses it deletes it.",
		Parameters: []Parameter{
			{Name: ParamSealingKeyID, Var: "RESPONDER_SEALING_KEY_ID", AllowedPattern: PatternSealingKeyID,
				Description: "Random ID of the key; the collection command names it to open its sealed parameters."},
			timeout("300"),
		},
		Scripts:          []string{"scripts/responder-common.sh", "scripts/linux-sealing-key.sh"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     SealingKeySchema,
	},
	{
		Name:     WindowsSealingKey,
		Platform: "Windows",
		StepName: "makeSealingKey",
		Description: "Responder: make a non-exportable RSA key pair (3072 bits, CNG) for the next command's " +
			"sealed parameters, and print its public key. The command that uses it deletes it.",
		Parameters: []Parameter{
			{Name: ParamSealingKeyID, Var: "ResponderSealingKeyId", AllowedPattern: PatternSealingKeyID,
				Description: "Random ID of the key; the collection command names it to open its sealed parameters."},
			timeout("300"),
		},
		Scripts:          []string{"scripts/windows-sealing-key.ps1"},
		TimeoutParameter: "ExecutionTimeout",
		ReportSchema:     SealingKeySchema,
	},
}

// DocumentParameters are the parameters the document declares: its own,
// but for the sealed ones, which travel inside Sealed (with SealingKeyId).
func (d Document) DocumentParameters() []Parameter {
	var out []Parameter
	for _, p := range d.Parameters {
		if !p.Sealed {
			out = append(out, p)
		}
	}
	if !d.HasSealed() {
		return out
	}
	keyVar, sealedVar := "RESPONDER_SEALING_KEY_ID", "RESPONDER_SEALED"
	if d.Platform == "Windows" {
		keyVar, sealedVar = "ResponderSealingKeyId", "ResponderSealed"
	}
	return append(out,
		Parameter{Name: ParamSealingKeyID, Var: keyVar, AllowedPattern: PatternSealingKeyID,
			Description: "The key the sealing-key command made on this instance for this command."},
		Parameter{Name: ParamSealed, Var: sealedVar, AllowedPattern: PatternSealed,
			Description: "The presigned URLs of this command, encrypted to that key (RSA-OAEP, SHA-256); " +
				"the instance deletes the key once it has read them. See ssm-documents/README.md."})
}

// Documents returns the specs of every document.
func Documents() []Document {
	out := make([]Document, len(documents))
	copy(out, documents)
	return out
}

// Lookup returns the spec of the named document (member or analysis).
func Lookup(name string) (Document, bool) {
	for _, d := range allDocuments() {
		if d.Name == name {
			return d, true
		}
	}
	return Document{}, false
}

// FileName is the document's file under documents/.
func (d Document) FileName() string { return "documents/" + d.Name + ".json" }

// heredocEnd closes the quoted here-document that carries the Linux script.
const heredocEnd = "RESPONDER_SCRIPT_END"

// Content renders the document as SSM expects it (JSON, schemaVersion 2.2).
// The bytes are deterministic: CreateDocument with them yields the same
// Hash (SHA-256 of the content) every time, which the engine records.
func (d Document) Content() ([]byte, error) {
	lines, err := d.runCommand()
	if err != nil {
		return nil, err
	}
	params := make(map[string]docParameter, len(d.Parameters))
	for _, p := range d.DocumentParameters() {
		dp := docParameter{Type: "String", Description: p.Description, AllowedPattern: p.AllowedPattern}
		if p.Default != "" {
			def := p.Default
			dp.Default = &def
		}
		params[p.Name] = dp
	}
	action := "aws:runShellScript"
	if d.Platform == "Windows" {
		action = "aws:runPowerShellScript"
	}
	doc := docJSON{
		SchemaVersion: "2.2",
		Description:   d.Description,
		Parameters:    params,
		MainSteps: []docStep{{
			Action:       action,
			Name:         d.StepName,
			Precondition: map[string][]string{"StringEquals": {"platformType", d.Platform}},
			Inputs: docInputs{
				TimeoutSeconds: "{{ " + d.TimeoutParameter + " }}",
				RunCommand:     lines,
			},
		}},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("document %s: %w", d.Name, err)
	}
	return buf.Bytes(), nil
}

// ContentSHA256 is the hex SHA-256 of Content, as SSM reports it in
// DescribeDocument's Hash (HashType Sha256).
func (d Document) ContentSHA256() (string, error) {
	c, err := d.Content()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

type docJSON struct {
	SchemaVersion string                  `json:"schemaVersion"`
	Description   string                  `json:"description"`
	Parameters    map[string]docParameter `json:"parameters"`
	MainSteps     []docStep               `json:"mainSteps"`
}

type docParameter struct {
	Type           string  `json:"type"`
	Description    string  `json:"description"`
	Default        *string `json:"default,omitempty"`
	AllowedPattern string  `json:"allowedPattern"`
}

type docStep struct {
	Action       string              `json:"action"`
	Name         string              `json:"name"`
	Precondition map[string][]string `json:"precondition"`
	Inputs       docInputs           `json:"inputs"`
}

type docInputs struct {
	TimeoutSeconds string   `json:"timeoutSeconds"`
	RunCommand     []string `json:"runCommand"`
}

// scriptLines reads the embedded scripts in order, checking that none of
// them could end the here-document early or carry a parameter reference, and
// compacts them (see compactScript).
func (d Document) scriptLines() ([]string, error) {
	var lines []string
	for _, name := range d.Scripts {
		b, err := scriptFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("document %s: %w", d.Name, err)
		}
		text := strings.ReplaceAll(string(b), "\r\n", "\n")
		if strings.Contains(text, "{{") {
			return nil, fmt.Errorf("document %s: %s contains {{, which SSM would treat as a parameter", d.Name, name)
		}
		if d.Platform == "Linux" {
			lines = append(lines, "# ---- "+name+" ----")
		}
		for _, l := range compactScript(strings.Split(text, "\n")) {
			if l == heredocEnd {
				return nil, fmt.Errorf("document %s: %s contains the line %s", d.Name, name, heredocEnd)
			}
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// compactScript drops comment lines, blank lines, a leading <# #> help
// block, and indentation, so that a document and the parameter values sent
// with it stay within SSM's 64 KB. Lines between "# compact: off" and
// "# compact: on" are kept as they are (embedded Python, where indentation
// matters); lines between "# compact: omit" and "# compact: on" are left
// out (a script's own command line, which a document never runs). Elsewhere the scripts are written so that this does not change
// their meaning: no string spans lines whose leading whitespace or leading #
// matters. The tests run the compacted scripts through the documents.
func compactScript(in []string) []string {
	var out []string
	inHelp, verbatim, omit := false, false, false
	for i, l := range in {
		t := strings.TrimSpace(l)
		switch {
		case t == "# compact: off":
			verbatim = true
			continue
		case t == "# compact: omit":
			omit = true
			continue
		case t == "# compact: on":
			verbatim, omit = false, false
			continue
		case omit:
			continue
		case verbatim:
			out = append(out, strings.TrimRight(l, " \t"))
			continue
		case i == 0 && t == "<#":
			inHelp = true
			continue
		case inHelp:
			if t == "#>" {
				inHelp = false
			}
			continue
		case t == "" || strings.HasPrefix(t, "#"):
			continue
		}
		out = append(out, t)
	}
	return out
}

func (d Document) runCommand() ([]string, error) {
	body, err := d.scriptLines()
	if err != nil {
		return nil, err
	}
	var lines []string
	if d.Platform == "Windows" {
		lines = append(lines,
			"# "+d.Name+": generated from ssm-documents/"+strings.Join(d.Scripts, ", ")+"; see ssm-documents/README.md.",
			"# Parameters reach PowerShell only inside single-quoted strings; their allowedPattern admits no quote.",
		)
		for _, p := range d.DocumentParameters() {
			if p.Var != "" {
				lines = append(lines, fmt.Sprintf("$%s = '{{ %s }}'", p.Var, p.Name))
			}
		}
		if d.HasSealed() {
			lines = append(lines, d.windowsUnseal()...)
		}
		var args []string
		for _, p := range d.Parameters {
			if p.Var != "" {
				args = append(args, fmt.Sprintf("-%s $%s", p.Name, p.Var))
			}
		}
		lines = append(lines, "& {")
		lines = append(lines, body...)
		lines = append(lines, "} "+strings.Join(args, " "), "exit $LASTEXITCODE")
		return lines, nil
	}
	lines = append(lines,
		"#!/bin/sh",
		"# "+d.Name+": generated from ssm-documents/scripts; see ssm-documents/README.md.",
		"# Parameters reach the shell only inside single quotes (their allowedPattern admits no quote)",
		"# and reach bash as environment variables.",
	)
	var vars []string
	for _, p := range d.DocumentParameters() {
		if p.Var == "" {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s='{{ %s }}'", p.Var, p.Name))
		vars = append(vars, p.Var)
	}
	if d.HasSealed() {
		// The variables rc_unseal may set from the sealed parameters.
		lines = append(lines, "RESPONDER_SEALED_VARS='"+strings.Join(d.sealedVars(), " ")+"'")
		vars = append(vars, "RESPONDER_SEALED_VARS")
	}
	lines = append(lines,
		"export "+strings.Join(vars, " "),
		`command -v bash >/dev/null 2>&1 || { echo '{"status":"failed","error":"bash not found"}'; exit 1; }`,
		"RESPONDER_SCRIPT=$(cat <<'"+heredocEnd+"'",
	)
	lines = append(lines, body...)
	lines = append(lines,
		heredocEnd,
		")",
		`exec bash -c "$RESPONDER_SCRIPT" `+strings.ToLower(d.Name)+" </dev/null",
	)
	return lines, nil
}

// windowsUnseal is the wrapper's opening of the sealed parameters on
// Windows: decrypt Sealed with the CNG key the sealing-key command made,
// gunzip,
// delete the key whatever happens, and set each sealed parameter's variable
// (only those). When that fails, the wrapper prints a failed report of the
// document's schema and exits 1: the script never runs without its URLs.
func (d Document) windowsUnseal() []string {
	quoted := make([]string, 0, len(d.sealedVars()))
	for _, v := range d.sealedVars() {
		quoted = append(quoted, "'"+v+"'")
	}
	return []string{
		"$ResponderSealedVars = @(" + strings.Join(quoted, ", ") + ")",
		"try {",
		"if ($ResponderSealingKeyId -notmatch '" + PatternSealingKeyID + "') { throw 'invalid sealing key ID' }",
		"if ($ResponderSealed -notmatch '" + PatternSealed + "') { throw 'malformed' }",
		"$ResponderKey = [Security.Cryptography.CngKey]::Open('Responder-' + $ResponderSealingKeyId)",
		"try {",
		"$ResponderRsa = New-Object Security.Cryptography.RSACng($ResponderKey)",
		"$ResponderPlain = New-Object IO.MemoryStream",
		"foreach ($c in $ResponderSealed.Substring(4).Split('.')) {",
		"$b = $ResponderRsa.Decrypt([Convert]::FromBase64String($c), [Security.Cryptography.RSAEncryptionPadding]::OaepSHA256)",
		"$ResponderPlain.Write($b, 0, $b.Length)",
		"}",
		"} finally { $ResponderKey.Delete() }",
		"$ResponderPlain.Position = 0",
		"$ResponderGzip = New-Object IO.Compression.GZipStream($ResponderPlain, [IO.Compression.CompressionMode]::Decompress)",
		"$ResponderText = (New-Object IO.StreamReader($ResponderGzip, [Text.Encoding]::UTF8)).ReadToEnd()",
		"foreach ($line in $ResponderText.Split([char]10)) {",
		"if ($line -eq '') { continue }",
		"$i = $line.IndexOf('=')",
		"if ($i -lt 1 -or $ResponderSealedVars -notcontains $line.Substring(0, $i)) { throw 'an unknown name' }",
		"Set-Variable -Name $line.Substring(0, $i) -Value $line.Substring($i + 1)",
		"}",
		"} catch {",
		"[ordered]@{ schema = '" + d.ReportSchema + "'; status = 'failed'; error = 'sealed parameters: ' + $_.Exception.Message } | ConvertTo-Json -Compress",
		"exit 1",
		"}",
	}
}
