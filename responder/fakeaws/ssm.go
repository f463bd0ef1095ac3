package fakeaws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSM is the account's AWS Systems Manager service; it implements cloud.SSM.
// Documents live in this file; managed nodes and commands in
// ssm_commands.go; the fake SSM Agent in agent.go (its configuration),
// agent_run.go (running a command's document), agent_http.go and
// agent_tls.go (the instance's S3 endpoint) and agent_powershell.go.
type SSM struct{ c *Cloud }

// maxDocumentSize is SSM's limit on the content of a Command document.
const maxDocumentSize = 64 * 1024

// ssmDocument is an SSM document of the account, with every version.
type ssmDocument struct {
	Name           string
	Versions       []documentVersion // version N is Versions[N-1]
	DefaultVersion int
	Seq            int
}

type documentVersion struct {
	Content string
	Hash    string // hex SHA-256 of Content
	Created time.Time
}

// docContent is the part of a Command document (schema 2.2) the fake reads.
type docContent struct {
	SchemaVersion string              `json:"schemaVersion"`
	Description   string              `json:"description"`
	Parameters    map[string]docParam `json:"parameters"`
	MainSteps     []docStep           `json:"mainSteps"`
}

type docParam struct {
	Type           string          `json:"type"`
	Description    string          `json:"description"`
	Default        json.RawMessage `json:"default"`
	AllowedPattern string          `json:"allowedPattern"`
	AllowedValues  []string        `json:"allowedValues"`
}

// defaultValue returns the parameter's default as a string, and whether it
// has one.
func (p docParam) defaultValue() (string, bool) {
	if len(p.Default) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(p.Default, &s) == nil {
		return s, true
	}
	return string(p.Default), true
}

type docStep struct {
	Action       string              `json:"action"`
	Name         string              `json:"name"`
	Precondition map[string][]string `json:"precondition"`
	Inputs       struct {
		TimeoutSeconds json.RawMessage `json:"timeoutSeconds"`
		RunCommand     []string        `json:"runCommand"`
	} `json:"inputs"`
}

var documentNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,128}$`)

// parseDocument checks a Command document's content as CreateDocument does
// and returns what the fake needs from it.
func parseDocument(content string) (docContent, error) {
	var d docContent
	if len(content) > maxDocumentSize {
		return d, apiError("MaxDocumentSizeExceeded", "The content for the document exceeds the maximum size of 64 KB.")
	}
	if err := json.Unmarshal([]byte(content), &d); err != nil {
		return d, apiError("InvalidDocumentContent", "The content for the document is not valid: %v", err)
	}
	switch d.SchemaVersion {
	case "2.2", "2.0":
	case "":
		return d, apiError("InvalidDocumentContent", "The content for the document is not valid: schemaVersion is missing.")
	case "1.2":
		return d, notModelled("CreateDocument", "schema version 1.2")
	default:
		return d, apiError("InvalidDocumentSchemaVersion", "Schema version %s is not supported for documents of type Command.", d.SchemaVersion)
	}
	if len(d.MainSteps) == 0 {
		return d, apiError("InvalidDocumentContent", "The content for the document is not valid: mainSteps is missing or empty.")
	}
	names := map[string]bool{}
	for _, s := range d.MainSteps {
		if s.Action == "" || s.Name == "" {
			return d, apiError("InvalidDocumentContent", "The content for the document is not valid: every step needs an action and a name.")
		}
		if names[s.Name] {
			return d, apiError("InvalidDocumentContent", "The content for the document is not valid: step name %s is not unique.", s.Name)
		}
		names[s.Name] = true
	}
	for name, p := range d.Parameters {
		switch p.Type {
		case "String", "StringList", "Boolean", "Integer", "StringMap", "MapList":
		default:
			return d, apiError("InvalidDocumentContent", "The content for the document is not valid: parameter %s has type %q.", name, p.Type)
		}
		if p.AllowedPattern != "" {
			re, err := regexp.Compile(p.AllowedPattern)
			if err != nil {
				return d, apiError("InvalidDocumentContent", "The content for the document is not valid: parameter %s has an invalid allowedPattern.", name)
			}
			if def, ok := p.defaultValue(); ok && p.Type == "String" && !re.MatchString(def) {
				return d, apiError("InvalidDocumentContent", "The content for the document is not valid: the default value of parameter %s does not match its allowedPattern.", name)
			}
		}
	}
	return d, nil
}

// platformTypes are the platforms a document's steps run on.
func (d docContent) platformTypes() []ssmtypes.PlatformType {
	var out []ssmtypes.PlatformType
	add := func(ps ...ssmtypes.PlatformType) {
		for _, p := range ps {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	for _, s := range d.MainSteps {
		switch s.Action {
		case "aws:runShellScript":
			add(ssmtypes.PlatformTypeLinux, ssmtypes.PlatformTypeMacos)
		case "aws:runPowerShellScript":
			add(ssmtypes.PlatformTypeWindows)
		default:
			add(ssmtypes.PlatformTypeLinux, ssmtypes.PlatformTypeMacos, ssmtypes.PlatformTypeWindows)
		}
	}
	return out
}

// resolveVersion returns the version a DocumentVersion names ("" is the
// default version), or InvalidDocumentVersion.
func (d *ssmDocument) resolveVersion(v string) (int, error) {
	switch v {
	case "", "$DEFAULT":
		return d.DefaultVersion, nil
	case "$LATEST":
		return len(d.Versions), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > len(d.Versions) {
		return 0, apiError("InvalidDocumentVersion", "The document version is not valid or does not exist.")
	}
	return n, nil
}

func invalidDocument(name string) error {
	return apiError("InvalidDocument", "Document with name %s does not exist.", name)
}

// documentLocked returns a document by name, or InvalidDocument.
func (c *Cloud) documentLocked(name string) (*ssmDocument, error) {
	d, ok := c.st.Documents[name]
	if !ok {
		return nil, invalidDocument(name)
	}
	return d, nil
}

// renderDocumentLocked describes version n of a document.
func (c *Cloud) renderDocumentLocked(d *ssmDocument, n int, status ssmtypes.DocumentStatus) *ssmtypes.DocumentDescription {
	v := d.Versions[n-1]
	content, _ := parseDocument(v.Content) // validated when stored
	out := &ssmtypes.DocumentDescription{
		Name:            aws.String(d.Name),
		DocumentType:    ssmtypes.DocumentTypeCommand,
		DocumentFormat:  ssmtypes.DocumentFormatJson,
		DocumentVersion: aws.String(strconv.Itoa(n)),
		LatestVersion:   aws.String(strconv.Itoa(len(d.Versions))),
		DefaultVersion:  aws.String(strconv.Itoa(d.DefaultVersion)),
		Hash:            aws.String(v.Hash),
		HashType:        ssmtypes.DocumentHashTypeSha256,
		Status:          status,
		SchemaVersion:   aws.String(content.SchemaVersion),
		Description:     aws.String(content.Description),
		Owner:           aws.String(c.Account),
		CreatedDate:     aws.Time(v.Created),
		PlatformTypes:   content.platformTypes(),
		Parameters:      []ssmtypes.DocumentParameter{},
		Tags:            []ssmtypes.Tag{},
	}
	names := make([]string, 0, len(content.Parameters))
	for name := range content.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := content.Parameters[name]
		dp := ssmtypes.DocumentParameter{
			Name:        aws.String(name),
			Type:        ssmtypes.DocumentParameterType(p.Type),
			Description: aws.String(p.Description),
		}
		if def, ok := p.defaultValue(); ok {
			dp.DefaultValue = aws.String(def)
		}
		out.Parameters = append(out.Parameters, dp)
	}
	return out
}

func contentHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

// checkDocumentKind answers the document types and formats the fake does
// not model.
func checkDocumentKind(op string, t ssmtypes.DocumentType, f ssmtypes.DocumentFormat) error {
	if t != "" && t != ssmtypes.DocumentTypeCommand {
		return notModelled(op, "document type "+string(t))
	}
	if f != "" && f != ssmtypes.DocumentFormatJson {
		return notModelled(op, "document format "+string(f))
	}
	return nil
}

// Document returns the content of version ("" or "$DEFAULT", "$LATEST", or a
// number) of an SSM document, and whether it exists.
func (c *Cloud) Document(name, version string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.st.Documents[name]
	if !ok {
		return "", false
	}
	n, err := d.resolveVersion(version)
	if err != nil {
		return "", false
	}
	return d.Versions[n-1].Content, true
}

// CreateDocument creates a Command document (JSON, schema 2.2 or 2.0) as
// version 1, also the default version. As SSM does it answers
// DocumentAlreadyExists for a name in use, InvalidDocumentContent for
// content that is not a valid Command document, MaxDocumentSizeExceeded over
// 64 KB. The answer shows the document "Creating"; DescribeDocument shows it
// Active at once. Other types and formats, attachments and requirements are
// not modelled.
func (s *SSM) CreateDocument(ctx context.Context, in *ssm.CreateDocumentInput, _ ...func(*ssm.Options)) (*ssm.CreateDocumentOutput, error) {
	if in == nil {
		in = &ssm.CreateDocumentInput{}
	}
	c := s.c
	out := &ssm.CreateDocumentOutput{}
	err := c.call(ctx, serviceSSM, "CreateDocument", false, &out.ResultMetadata, func() (func(), error) {
		name, content := aws.ToString(in.Name), aws.ToString(in.Content)
		switch {
		case name == "" || content == "":
			return nil, apiError("ValidationException", "1 validation error detected: Name and Content are required")
		case !documentNamePattern.MatchString(name):
			return nil, apiError("ValidationException", "1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$", name)
		}
		for _, reserved := range []string{"aws", "amazon", "amzn"} {
			if strings.HasPrefix(strings.ToLower(name), reserved) {
				return nil, apiError("ValidationException", "Document names may not start with %s", reserved)
			}
		}
		if err := checkDocumentKind("CreateDocument", in.DocumentType, in.DocumentFormat); err != nil {
			return nil, err
		}
		if len(in.Attachments) > 0 || len(in.Requires) > 0 || in.TargetType != nil || in.VersionName != nil {
			return nil, notModelled("CreateDocument", "attachments, requirements, target types or version names")
		}
		if _, ok := c.st.Documents[name]; ok {
			return nil, apiError("DocumentAlreadyExists", "Document with same name %s already exists", name)
		}
		if _, err := parseDocument(content); err != nil {
			return nil, err
		}
		return func() {
			d := &ssmDocument{
				Name:           name,
				Versions:       []documentVersion{{Content: content, Hash: contentHash(content), Created: c.now().Truncate(time.Millisecond)}},
				DefaultVersion: 1,
				Seq:            c.nextSeqLocked(),
			}
			c.st.Documents[name] = d
			out.DocumentDescription = c.renderDocumentLocked(d, 1, ssmtypes.DocumentStatusCreating)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeDocument describes a version of a document (the default version
// when DocumentVersion is empty; "$LATEST", "$DEFAULT" or a number):
// Hash (hex SHA-256 of the content, HashType Sha256), DocumentVersion,
// LatestVersion, DefaultVersion, Status Active, Parameters, PlatformTypes.
// An unknown document answers InvalidDocument, an unknown version
// InvalidDocumentVersion.
func (s *SSM) DescribeDocument(ctx context.Context, in *ssm.DescribeDocumentInput, _ ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error) {
	if in == nil {
		in = &ssm.DescribeDocumentInput{}
	}
	c := s.c
	out := &ssm.DescribeDocumentOutput{}
	err := c.call(ctx, serviceSSM, "DescribeDocument", false, &out.ResultMetadata, func() (func(), error) {
		name := aws.ToString(in.Name)
		if name == "" {
			return nil, apiError("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
		}
		if in.VersionName != nil {
			return nil, notModelled("DescribeDocument", "VersionName")
		}
		d, err := c.documentLocked(name)
		if err != nil {
			return nil, err
		}
		n, err := d.resolveVersion(aws.ToString(in.DocumentVersion))
		if err != nil {
			return nil, err
		}
		return func() { out.Document = c.renderDocumentLocked(d, n, ssmtypes.DocumentStatusActive) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetDocument returns the content of a version of a document (the default
// version when DocumentVersion is empty; "$LATEST", "$DEFAULT" or a
// number), with its type, format and status (Active). Only JSON is stored
// and returned: asking for YAML or TEXT is not modelled. An unknown document
// answers InvalidDocument, an unknown version InvalidDocumentVersion.
func (s *SSM) GetDocument(ctx context.Context, in *ssm.GetDocumentInput, _ ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error) {
	if in == nil {
		in = &ssm.GetDocumentInput{}
	}
	c := s.c
	out := &ssm.GetDocumentOutput{}
	err := c.call(ctx, serviceSSM, "GetDocument", false, &out.ResultMetadata, func() (func(), error) {
		name := aws.ToString(in.Name)
		if name == "" {
			return nil, apiError("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
		}
		if err := checkDocumentKind("GetDocument", "", in.DocumentFormat); err != nil {
			return nil, err
		}
		if in.VersionName != nil {
			return nil, notModelled("GetDocument", "VersionName")
		}
		d, err := c.documentLocked(name)
		if err != nil {
			return nil, err
		}
		n, err := d.resolveVersion(aws.ToString(in.DocumentVersion))
		if err != nil {
			return nil, err
		}
		return func() {
			out.Name, out.DocumentVersion = aws.String(d.Name), aws.String(strconv.Itoa(n))
			out.DocumentType, out.DocumentFormat = ssmtypes.DocumentTypeCommand, ssmtypes.DocumentFormatJson
			out.Status, out.Content = ssmtypes.DocumentStatusActive, aws.String(d.Versions[n-1].Content)
			out.CreatedDate = aws.Time(d.Versions[n-1].Created)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateDocument adds a version with new content. DocumentVersion must name
// the latest version ("$LATEST", its number, or empty); the default version
// does not change. Content equal to the latest version's answers
// DuplicateDocumentContent.
func (s *SSM) UpdateDocument(ctx context.Context, in *ssm.UpdateDocumentInput, _ ...func(*ssm.Options)) (*ssm.UpdateDocumentOutput, error) {
	if in == nil {
		in = &ssm.UpdateDocumentInput{}
	}
	c := s.c
	out := &ssm.UpdateDocumentOutput{}
	err := c.call(ctx, serviceSSM, "UpdateDocument", false, &out.ResultMetadata, func() (func(), error) {
		name, content := aws.ToString(in.Name), aws.ToString(in.Content)
		if name == "" || content == "" {
			return nil, apiError("ValidationException", "1 validation error detected: Name and Content are required")
		}
		if err := checkDocumentKind("UpdateDocument", "", in.DocumentFormat); err != nil {
			return nil, err
		}
		if len(in.Attachments) > 0 || in.TargetType != nil || in.VersionName != nil || in.DisplayName != nil {
			return nil, notModelled("UpdateDocument", "attachments, target types, version or display names")
		}
		d, err := c.documentLocked(name)
		if err != nil {
			return nil, err
		}
		n, err := d.resolveVersion(aws.ToString(in.DocumentVersion))
		if aws.ToString(in.DocumentVersion) == "" {
			n, err = len(d.Versions), nil
		}
		if err != nil {
			return nil, err
		}
		if n != len(d.Versions) {
			return nil, apiError("InvalidDocumentVersion", "Only the latest version (%d) of document %s can be updated.", len(d.Versions), name)
		}
		if d.Versions[n-1].Content == content {
			return nil, apiError("DuplicateDocumentContent", "The content of the association document matches another document. Change the content of the document and try again.")
		}
		if _, err := parseDocument(content); err != nil {
			return nil, err
		}
		return func() {
			d.Versions = append(d.Versions, documentVersion{Content: content, Hash: contentHash(content), Created: c.now().Truncate(time.Millisecond)})
			out.DocumentDescription = c.renderDocumentLocked(d, len(d.Versions), ssmtypes.DocumentStatusUpdating)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stepTimeout returns the first step's timeout (see docStep.timeout).
func (d docContent) stepTimeout(params map[string]string) time.Duration {
	if len(d.MainSteps) == 0 {
		return 3600 * time.Second
	}
	return d.MainSteps[0].timeout(params)
}

// timeout returns the step's timeoutSeconds: a number, or a "{{ Param }}"
// reference resolved in params; 3600 (SSM's default) when there is none.
func (s docStep) timeout(params map[string]string) time.Duration {
	const def = 3600 * time.Second
	raw := s.Inputs.TimeoutSeconds
	if len(raw) == 0 {
		return def
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		v = string(raw)
	}
	v = strings.TrimSpace(v)
	if ref, ok := strings.CutPrefix(v, "{{"); ok {
		v = params[strings.TrimSpace(strings.TrimSuffix(ref, "}}"))]
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// checkParameters validates SendCommand's Parameters against a document's
// and returns the values every parameter has (defaults filled in). Errors
// name the parameter, never its value.
func (d docContent) checkParameters(sent map[string][]string) (map[string]string, error) {
	var names []string
	for name := range sent {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := d.Parameters[name]; !ok {
			return nil, apiError("InvalidParameters", "Parameter %q is not defined in the document.", name)
		}
	}
	values := map[string]string{}
	var declared []string
	for name := range d.Parameters {
		declared = append(declared, name)
	}
	sort.Strings(declared)
	for _, name := range declared {
		p := d.Parameters[name]
		v, given := sent[name]
		if !given {
			def, ok := p.defaultValue()
			if !ok {
				return nil, apiError("InvalidParameters", "Parameter %q is required but was not provided.", name)
			}
			values[name] = def
			continue
		}
		if p.Type == "String" && len(v) != 1 {
			return nil, apiError("InvalidParameters", "Parameter %q takes exactly one value.", name)
		}
		for _, one := range v {
			if p.AllowedPattern != "" && !regexp.MustCompile(p.AllowedPattern).MatchString(one) {
				return nil, apiError("InvalidParameters", "Parameter %q value does not match the allowedPattern %s.", name, p.AllowedPattern)
			}
			if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, one) {
				return nil, apiError("InvalidParameters", "Parameter %q value is not one of its allowedValues.", name)
			}
		}
		values[name] = strings.Join(v, ",")
	}
	return values, nil
}

// fmtSSMTime formats a time as GetCommandInvocation's date-time strings do.
func fmtSSMTime(t time.Time) *string {
	if t.IsZero() {
		return aws.String("")
	}
	return aws.String(t.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// fmtElapsed formats a duration as ISO 8601 (PT1.234S), as
// ExecutionElapsedTime does.
func fmtElapsed(d time.Duration) *string {
	return aws.String(fmt.Sprintf("PT%.3fS", d.Seconds()))
}
