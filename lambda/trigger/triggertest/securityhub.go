package triggertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/securityhub/types"
	"github.com/aws/smithy-go"
)

// Finding is a finding of the fake, as the responder left it.
type Finding struct {
	ID         string
	ProductArn string
	Note       string
	UpdatedBy  string
	Workflow   types.WorkflowStatus
	// Updates counts the BatchUpdateFindings calls that changed it.
	Updates int
}

// SecurityHub is a FAKE of AWS Security Hub's BatchUpdateFindings (moto does
// not implement it): findings are added with AddFinding; a call updates the
// note and workflow status of the findings it names, within the API's limits
// (1-100 findings, note text and UpdatedBy of 1-512 characters). Safe for
// concurrent use.
type SecurityHub struct {
	mu       sync.Mutex
	findings map[findingKey]*Finding
	// unprocessed queues, per finding ID, error codes to answer for it
	// instead of updating it.
	unprocessed map[string][]string
	faults      []error
	// AnyFinding makes every finding named by a call exist.
	AnyFinding bool
}

type findingKey struct{ id, product string }

// NewSecurityHub returns a fake with no finding.
func NewSecurityHub() *SecurityHub {
	return &SecurityHub{findings: map[findingKey]*Finding{}, unprocessed: map[string][]string{}}
}

// AddFinding adds a finding in workflow status NEW.
func (f *SecurityHub) AddFinding(id, productArn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.findings[findingKey{id, productArn}] = &Finding{ID: id, ProductArn: productArn, Workflow: types.WorkflowStatusNew}
}

// Unprocess makes the next call that names the finding report it unprocessed
// with code (ConcurrentUpdateError, InternalFailure...).
func (f *SecurityHub) Unprocess(id, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unprocessed[id] = append(f.unprocessed[id], code)
}

// FailNext makes the next call fail with err.
func (f *SecurityHub) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, err)
}

// Findings returns copies of every finding, by ID.
func (f *SecurityHub) Findings() []Finding {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Finding, 0, len(f.findings))
	for _, x := range f.findings {
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Finding returns a copy of one finding.
func (f *SecurityHub) Finding(id string) (Finding, bool) {
	for _, x := range f.Findings() {
		if x.ID == id {
			return x, true
		}
	}
	return Finding{}, false
}

func invalidInput(msg string) error {
	return &smithy.OperationError{ServiceID: "SecurityHub", OperationName: "BatchUpdateFindings",
		Err: &types.InvalidInputException{Message: aws.String(msg), Code: aws.String("InvalidInputException")}}
}

// BatchUpdateFindings updates findings.
func (f *SecurityHub) BatchUpdateFindings(ctx context.Context, in *securityhub.BatchUpdateFindingsInput, _ ...func(*securityhub.Options)) (*securityhub.BatchUpdateFindingsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.faults) > 0 {
		err := f.faults[0]
		f.faults = f.faults[1:]
		return nil, err
	}
	if n := len(in.FindingIdentifiers); n < 1 || n > 100 {
		return nil, invalidInput(fmt.Sprintf("FindingIdentifiers: %d given, 1 to 100 allowed", n))
	}
	if in.Note == nil && in.Workflow == nil && in.Severity == nil && in.VerificationState == "" && in.Types == nil &&
		in.Confidence == nil && in.Criticality == nil && in.UserDefinedFields == nil && in.RelatedFindings == nil {
		return nil, invalidInput("nothing to update")
	}
	if n := in.Note; n != nil {
		if l := len([]rune(aws.ToString(n.Text))); l < 1 || l > 512 {
			return nil, invalidInput(fmt.Sprintf("Note.Text: %d characters, 1 to 512 allowed", l))
		}
		if l := len([]rune(aws.ToString(n.UpdatedBy))); l < 1 || l > 512 {
			return nil, invalidInput(fmt.Sprintf("Note.UpdatedBy: %d characters, 1 to 512 allowed", l))
		}
	}
	if w := in.Workflow; w != nil {
		switch w.Status {
		case types.WorkflowStatusNew, types.WorkflowStatusNotified, types.WorkflowStatusResolved, types.WorkflowStatusSuppressed:
		default:
			return nil, invalidInput(fmt.Sprintf("Workflow.Status %q", w.Status))
		}
	}
	out := &securityhub.BatchUpdateFindingsOutput{ProcessedFindings: []types.AwsSecurityFindingIdentifier{}, UnprocessedFindings: []types.BatchUpdateFindingsUnprocessedFinding{}}
	seen := map[findingKey]bool{}
	unproc := func(id types.AwsSecurityFindingIdentifier, code, msg string) {
		out.UnprocessedFindings = append(out.UnprocessedFindings, types.BatchUpdateFindingsUnprocessedFinding{
			FindingIdentifier: &id, ErrorCode: aws.String(code), ErrorMessage: aws.String(msg)})
	}
	for _, id := range in.FindingIdentifiers {
		k := findingKey{aws.ToString(id.Id), aws.ToString(id.ProductArn)}
		if seen[k] {
			unproc(id, "DuplicatedFindingIdentifier", "Finding Identifier is duplicated")
			continue
		}
		seen[k] = true
		if q := f.unprocessed[k.id]; len(q) > 0 {
			f.unprocessed[k.id] = q[1:]
			unproc(id, q[0], "injected")
			continue
		}
		x, ok := f.findings[k]
		if !ok && f.AnyFinding {
			x = &Finding{ID: k.id, ProductArn: k.product, Workflow: types.WorkflowStatusNew}
			f.findings[k] = x
			ok = true
		}
		if !ok {
			unproc(id, "FindingNotFound", "Finding Not Found")
			continue
		}
		if n := in.Note; n != nil {
			x.Note, x.UpdatedBy = aws.ToString(n.Text), aws.ToString(n.UpdatedBy)
		}
		if w := in.Workflow; w != nil {
			x.Workflow = w.Status
		}
		x.Updates++
		out.ProcessedFindings = append(out.ProcessedFindings, id)
	}
	return out, nil
}

// SecurityHubServer serves the fake's BatchUpdateFindings over HTTP, in the
// service's REST-JSON protocol (PATCH /findings/batchupdate), so that an SDK
// client pointed at it (AWS_ENDPOINT_URL_SECURITYHUB) updates the fake. Other
// operations answer 404.
func SecurityHubServer(f *SecurityHub) http.Handler {
	type identifier struct {
		ID         string `json:"Id"`
		ProductArn string `json:"ProductArn"`
	}
	type request struct {
		FindingIdentifiers []identifier `json:"FindingIdentifiers"`
		Note               *struct {
			Text      string `json:"Text"`
			UpdatedBy string `json:"UpdatedBy"`
		} `json:"Note"`
		Workflow *struct {
			Status string `json:"Status"`
		} `json:"Workflow"`
	}
	type unprocessedJSON struct {
		FindingIdentifier identifier `json:"FindingIdentifier"`
		ErrorCode         string     `json:"ErrorCode"`
		ErrorMessage      string     `json:"ErrorMessage"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Requestid", "fake-securityhub")
		if r.URL.Path != "/findings/batchupdate" {
			w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"Message":"not served by the fake"}`)
			return
		}
		var req request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.Header().Set("X-Amzn-Errortype", "InvalidInputException")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"Message":%q,"Code":"InvalidInputException"}`, err.Error())
			return
		}
		in := &securityhub.BatchUpdateFindingsInput{}
		for _, id := range req.FindingIdentifiers {
			in.FindingIdentifiers = append(in.FindingIdentifiers, types.AwsSecurityFindingIdentifier{Id: aws.String(id.ID), ProductArn: aws.String(id.ProductArn)})
		}
		if req.Note != nil {
			in.Note = &types.NoteUpdate{Text: aws.String(req.Note.Text), UpdatedBy: aws.String(req.Note.UpdatedBy)}
		}
		if req.Workflow != nil {
			in.Workflow = &types.WorkflowUpdate{Status: types.WorkflowStatus(req.Workflow.Status)}
		}
		out, err := f.BatchUpdateFindings(r.Context(), in)
		if err != nil {
			w.Header().Set("X-Amzn-Errortype", "InvalidInputException")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"Message":%q,"Code":"InvalidInputException"}`, err.Error())
			return
		}
		resp := struct {
			ProcessedFindings   []identifier      `json:"ProcessedFindings"`
			UnprocessedFindings []unprocessedJSON `json:"UnprocessedFindings"`
		}{ProcessedFindings: []identifier{}, UnprocessedFindings: []unprocessedJSON{}}
		for _, p := range out.ProcessedFindings {
			resp.ProcessedFindings = append(resp.ProcessedFindings, identifier{aws.ToString(p.Id), aws.ToString(p.ProductArn)})
		}
		for _, u := range out.UnprocessedFindings {
			resp.UnprocessedFindings = append(resp.UnprocessedFindings, unprocessedJSON{
				FindingIdentifier: identifier{aws.ToString(u.FindingIdentifier.Id), aws.ToString(u.FindingIdentifier.ProductArn)},
				ErrorCode:         aws.ToString(u.ErrorCode), ErrorMessage: aws.ToString(u.ErrorMessage)})
		}
		_ = json.NewEncoder(w).Encode(resp)
	})
}
