package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// This file is a small interpreter of the part of the Amazon States Language
// that statemachine.asl.json uses (JSONPath; Task with the lambda:invoke
// integration, Pass, Choice, Wait, Succeed, Fail, Map (inline, and
// distributed run as inline, its ItemReader served by the test); Parameters,
// ItemSelector with $$.Map.Item, ResultSelector, ResultPath (null too),
// Retry, Catch; States.Format in CausePath). It runs the state
// machine against the real handler in tests, as Step Functions would: it is
// no substitute for Step Functions (asl-validator checks the definition
// against the language), but it proves that the states and the handler's
// task routes fit together. Anything it does not know (a field, a rule, a
// path) makes it fail rather than guess.

// lambdaInvoke is the only Task resource the machine may use.
const lambdaInvoke = "arn:aws:states:::lambda:invoke"

// functionPlaceholder is the function ARN substituted at deployment.
const functionPlaceholder = "${ResponderFunctionArn}"

type aslMachine struct {
	invocations int
	// readItems serves a distributed Map's ItemReader (s3:getObject of a
	// JSON array); nil: a Map with an ItemReader fails.
	readItems func(bucket, key string) ([]any, error)
	// iterations counts the Map iterations run (lanes and cases).
	iterations atomic.Int64
	Comment    string              `json:"Comment"`
	StartAt    string              `json:"StartAt"`
	States     map[string]aslState `json:"States"`
}

// aslProcessor is a Map state's ItemProcessor.
type aslProcessor struct {
	ProcessorConfig map[string]string   `json:"ProcessorConfig"`
	StartAt         string              `json:"StartAt"`
	States          map[string]aslState `json:"States"`
}

// aslItemReader is a distributed Map's ItemReader.
type aslItemReader struct {
	Resource     string            `json:"Resource"`
	ReaderConfig map[string]string `json:"ReaderConfig"`
	Parameters   map[string]any    `json:"Parameters"`
}

type aslState struct {
	Type           string           `json:"Type"`
	Comment        string           `json:"Comment"`
	Resource       string           `json:"Resource"`
	Parameters     map[string]any   `json:"Parameters"`
	ResultSelector map[string]any   `json:"ResultSelector"`
	ResultPath     *string          `json:"ResultPath"`
	TimeoutSeconds int              `json:"TimeoutSeconds"`
	Retry          []aslRetrier     `json:"Retry"`
	Catch          []aslCatcher     `json:"Catch"`
	Next           string           `json:"Next"`
	End            bool             `json:"End"`
	Result         any              `json:"Result"`
	Choices        []map[string]any `json:"Choices"`
	Default        string           `json:"Default"`
	Seconds        int              `json:"Seconds"`
	Error          string           `json:"Error"`
	Cause          string           `json:"Cause"`
	CausePath      string           `json:"CausePath"`
	// Map
	ItemsPath                  string         `json:"ItemsPath"`
	ItemSelector               map[string]any `json:"ItemSelector"`
	MaxConcurrency             int            `json:"MaxConcurrency"`
	ToleratedFailurePercentage float64        `json:"ToleratedFailurePercentage"`
	ItemProcessor              *aslProcessor  `json:"ItemProcessor"`
	ItemReader                 *aslItemReader `json:"ItemReader"`
	// discard is "ResultPath": null: the state's output is its input.
	discard bool
}

type aslRetrier struct {
	ErrorEquals     []string `json:"ErrorEquals"`
	IntervalSeconds int      `json:"IntervalSeconds"`
	MaxAttempts     *int     `json:"MaxAttempts"`
	BackoffRate     float64  `json:"BackoffRate"`
	JitterStrategy  string   `json:"JitterStrategy"`
}

type aslCatcher struct {
	ErrorEquals []string `json:"ErrorEquals"`
	ResultPath  *string  `json:"ResultPath"`
	Next        string   `json:"Next"`
}

// loadMachine reads a definition strictly: a field the interpreter does not
// know is an error.
func loadMachine(path string) (*aslMachine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m aslMachine
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w (a field the test interpreter does not know?)", path, err)
	}
	var raw struct {
		States map[string]json.RawMessage `json:"States"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if err := markDiscards(m.States, raw.States); err != nil {
		return nil, err
	}
	return &m, nil
}

// markDiscards finds the states whose ResultPath is null, which decoding
// into a *string cannot tell from none, in processors too.
func markDiscards(states map[string]aslState, raw map[string]json.RawMessage) error {
	for name, r := range raw {
		var fields struct {
			ResultPath    json.RawMessage `json:"ResultPath"`
			ItemProcessor *struct {
				States map[string]json.RawMessage `json:"States"`
			} `json:"ItemProcessor"`
		}
		if err := json.Unmarshal(r, &fields); err != nil {
			return fmt.Errorf("state %s: %w", name, err)
		}
		st := states[name]
		st.discard = string(fields.ResultPath) == "null"
		if fields.ItemProcessor != nil {
			if err := markDiscards(st.ItemProcessor.States, fields.ItemProcessor.States); err != nil {
				return err
			}
		}
		states[name] = st
	}
	return nil
}

// allStates lists every state of the machine, those of Map processors too,
// by name (names are unique across the whole definition).
func (m *aslMachine) allStates() (map[string]aslState, error) {
	all := map[string]aslState{}
	var walk func(states map[string]aslState) error
	walk = func(states map[string]aslState) error {
		for name, st := range states {
			if _, dup := all[name]; dup {
				return fmt.Errorf("state name %s is used twice", name)
			}
			all[name] = st
			if st.ItemProcessor != nil {
				if err := walk(st.ItemProcessor.States); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return all, walk(m.States)
}

// taskError is a failed task as Step Functions names it: the function's
// error type and message.
type taskError struct {
	Name, Cause string
}

// invokeFunc runs the function on a payload: its answer, or a *taskError.
type invokeFunc func(payload []byte) (json.RawMessage, *taskError)

// visit is one state entered by an execution.
type visit struct {
	State  string
	Input  any
	Output any // nil for Succeed/Fail (and a state that failed)
}

// execution is how a run ended.
type execution struct {
	Status string // SUCCEEDED or FAILED
	End    string // the last state
	Output any
	Error  string
	Cause  string
	Visits []visit
	Waits  int
	// Waited is the seconds the Wait states would have waited.
	Waited int
	// Invocations counts the function's invocations (retries included).
	Invocations int
}

// run executes the machine on input. onWait is called at every Wait state
// (no time passes). At most maxTransitions states are entered.
func (m *aslMachine) run(input any, invoke invokeFunc, onWait func(), maxTransitions int) (*execution, error) {
	ex := &execution{}
	m.invocations = 0
	defer func() { ex.Invocations = m.invocations }()
	name := m.StartAt
	data := input
	for range maxTransitions {
		st, ok := m.States[name]
		if !ok {
			return ex, fmt.Errorf("no state %q", name)
		}
		v := visit{State: name, Input: data}
		var next string
		switch st.Type {
		case "Task":
			out, nextState, err := m.task(st, data, invoke)
			if err != nil {
				return ex, fmt.Errorf("state %s: %w", name, err)
			}
			data, next = out, nextState
		case "Pass":
			result := st.Result
			if st.Parameters != nil {
				r, err := evalParameters(st.Parameters, data)
				if err != nil {
					return ex, fmt.Errorf("state %s Parameters: %w", name, err)
				}
				result = r
			}
			out, err := placeResult(data, result, st)
			if err != nil {
				return ex, fmt.Errorf("state %s: %w", name, err)
			}
			data, next = out, st.Next
		case "Choice":
			n, err := choose(st, data)
			if err != nil {
				return ex, fmt.Errorf("state %s: %w", name, err)
			}
			next = n
		case "Map":
			out, nextState, err := m.runMap(st, data, invoke, onWait, maxTransitions)
			if err != nil {
				return ex, fmt.Errorf("state %s: %w", name, err)
			}
			data, next = out, nextState
		case "Wait":
			ex.Waits++
			ex.Waited += st.Seconds
			if onWait != nil {
				onWait()
			}
			next = st.Next
		case "Succeed":
			ex.Visits = append(ex.Visits, v)
			ex.Status, ex.End, ex.Output = "SUCCEEDED", name, data
			return ex, nil
		case "Fail":
			ex.Visits = append(ex.Visits, v)
			ex.Status, ex.End, ex.Error, ex.Cause = "FAILED", name, st.Error, st.Cause
			if st.CausePath != "" {
				c, err := evalString(st.CausePath, data)
				if err != nil {
					return ex, fmt.Errorf("state %s CausePath: %w", name, err)
				}
				ex.Cause = c
			}
			return ex, nil
		default:
			return ex, fmt.Errorf("state %s: type %q not interpreted", name, st.Type)
		}
		v.Output = data
		ex.Visits = append(ex.Visits, v)
		if next == "" && st.End {
			ex.Status, ex.End, ex.Output = "SUCCEEDED", name, data
			return ex, nil
		}
		if next == "" {
			return ex, fmt.Errorf("state %s has no Next", name)
		}
		name = next
	}
	return ex, fmt.Errorf("more than %d transitions", maxTransitions)
}

// task runs a Task: Parameters, the invocation with its retries, then
// ResultSelector and ResultPath, or the matching Catch.
func (m *aslMachine) task(st aslState, data any, invoke invokeFunc) (any, string, error) {
	if st.Resource != lambdaInvoke {
		return nil, "", fmt.Errorf("resource %q, want %s", st.Resource, lambdaInvoke)
	}
	params, err := evalParameters(st.Parameters, data)
	if err != nil {
		return nil, "", err
	}
	p := params.(map[string]any)
	if p["FunctionName"] != functionPlaceholder {
		return nil, "", fmt.Errorf("FunctionName %v, want %s", p["FunctionName"], functionPlaceholder)
	}
	payload, err := json.Marshal(p["Payload"])
	if err != nil {
		return nil, "", err
	}
	attempts := make([]int, len(st.Retry))
	for {
		m.invocations++
		out, terr := invoke(payload)
		if terr == nil {
			var decoded any
			if err := json.Unmarshal(out, &decoded); err != nil {
				return nil, "", fmt.Errorf("function answer is not JSON: %w", err)
			}
			result := any(map[string]any{"Payload": decoded, "StatusCode": 200.0})
			if st.ResultSelector != nil {
				if result, err = evalParameters(st.ResultSelector, result); err != nil {
					return nil, "", fmt.Errorf("ResultSelector: %w", err)
				}
			}
			out, err := placeResult(data, result, st)
			return out, st.Next, err
		}
		retried := false
		for i, r := range st.Retry {
			if !matches(r.ErrorEquals, terr.Name) {
				continue
			}
			limit := 3
			if r.MaxAttempts != nil {
				limit = *r.MaxAttempts
			}
			if attempts[i] < limit {
				attempts[i]++
				retried = true
			}
			break
		}
		if retried {
			continue
		}
		return catch(st, data, terr)
	}
}

// catch routes a state's error to its matching Catch.
func catch(st aslState, data any, terr *taskError) (any, string, error) {
	for _, c := range st.Catch {
		if matches(c.ErrorEquals, terr.Name) {
			out, err := applyResultPath(data, map[string]any{"Error": terr.Name, "Cause": terr.Cause}, c.ResultPath)
			return out, c.Next, err
		}
	}
	return nil, "", fmt.Errorf("uncaught error %s: %s", terr.Name, terr.Cause)
}

// placeResult applies a state's ResultPath; null keeps the input.
func placeResult(data, result any, st aslState) (any, error) {
	if st.discard {
		return data, nil
	}
	return applyResultPath(data, result, st.ResultPath)
}

// runMap runs a Map state: its items (ItemsPath, or the ItemReader), each
// through ItemSelector and the processor, at most MaxConcurrency at once
// (0: all). A distributed Map runs here as an inline one does. Failed
// iterations beyond ToleratedFailurePercentage fail the state
// (States.ExceedToleratedFailureThreshold; an inline Map tolerates none).
func (m *aslMachine) runMap(st aslState, data any, invoke invokeFunc, onWait func(), maxTransitions int) (any, string, error) {
	items, err := m.mapItems(st, data)
	if err != nil {
		return nil, "", err
	}
	results := make([]any, len(items))
	failures := make([]*execution, len(items))
	limit := st.MaxConcurrency
	if limit <= 0 {
		limit = len(items) + 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for i, item := range items {
		input, err := evalParametersWith(st.ItemSelector, data, map[string]any{"Map": map[string]any{"Item": map[string]any{"Value": item, "Index": float64(i)}}})
		if st.ItemSelector == nil {
			input, err = item, nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("ItemSelector: %w", err)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sub := &aslMachine{StartAt: st.ItemProcessor.StartAt, States: st.ItemProcessor.States, readItems: m.readItems}
			ex, err := sub.run(input, invoke, onWait, maxTransitions)
			m.iterations.Add(1 + sub.iterations.Load())
			mu.Lock()
			defer mu.Unlock()
			m.invocations += ex.Invocations
			switch {
			case err != nil && firstErr == nil:
				firstErr = fmt.Errorf("iteration %d: %w", i, err)
			case ex.Status != "SUCCEEDED":
				failures[i] = ex
			default:
				results[i] = ex.Output
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, "", firstErr
	}
	if terr := mapFailure(st, failures, len(items)); terr != nil {
		return catch(st, data, terr)
	}
	out, err := placeResult(data, any(results), st)
	return out, st.Next, err
}

// mapItems reads a Map state's items.
func (m *aslMachine) mapItems(st aslState, data any) ([]any, error) {
	if r := st.ItemReader; r != nil {
		if r.Resource != "arn:aws:states:::s3:getObject" || r.ReaderConfig["InputType"] != "JSON" || m.readItems == nil {
			return nil, fmt.Errorf("ItemReader %s %v not interpreted", r.Resource, r.ReaderConfig)
		}
		p, err := evalParameters(r.Parameters, data)
		if err != nil {
			return nil, fmt.Errorf("ItemReader: %w", err)
		}
		pm := p.(map[string]any)
		bucket, _ := pm["Bucket"].(string)
		key, _ := pm["Key"].(string)
		return m.readItems(bucket, key)
	}
	path := st.ItemsPath
	if path == "" {
		path = "$"
	}
	v, err := evalPath(path, data)
	if err != nil {
		return nil, err
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("ItemsPath %s is not an array (States.Runtime)", path)
	}
	return items, nil
}

// mapFailure is the error of a Map whose failed iterations exceed what it
// tolerates; nil otherwise.
func mapFailure(st aslState, failures []*execution, n int) *taskError {
	var failed []*execution
	for _, f := range failures {
		if f != nil {
			failed = append(failed, f)
		}
	}
	if len(failed) == 0 || float64(len(failed))*100 <= st.ToleratedFailurePercentage*float64(n) {
		return nil
	}
	if st.ItemProcessor.ProcessorConfig["Mode"] == "DISTRIBUTED" {
		return &taskError{Name: "States.ExceedToleratedFailureThreshold", Cause: fmt.Sprintf("%d of %d iterations failed", len(failed), n)}
	}
	return &taskError{Name: failed[0].Error, Cause: failed[0].Cause}
}

func matches(errorEquals []string, name string) bool {
	for _, e := range errorEquals {
		if e == name || e == "States.ALL" || (e == "States.TaskFailed" && !strings.HasPrefix(name, "States.")) {
			return true
		}
	}
	return false
}

// choose evaluates the rules of a Choice state.
func choose(st aslState, data any) (string, error) {
	for _, rule := range st.Choices {
		variable, _ := rule["Variable"].(string)
		v, verr := evalPath(variable, data)
		if _, presence := rule["IsPresent"]; verr != nil && !presence {
			return "", verr
		}
		var ok bool
		var known bool
		for op, want := range rule {
			switch op {
			case "Variable", "Next":
				continue
			case "IsPresent":
				ok, known = (verr == nil) == want.(bool), true
			case "BooleanEquals", "StringEquals":
				ok, known = v == want, true
			case "NumericGreaterThanEquals":
				f, isNum := v.(float64)
				ok, known = isNum && f >= want.(float64), true
			default:
				return "", fmt.Errorf("choice rule %q not interpreted", op)
			}
		}
		if !known {
			return "", fmt.Errorf("choice rule without comparison: %v", rule)
		}
		if ok {
			return rule["Next"].(string), nil
		}
	}
	if st.Default == "" {
		return "", fmt.Errorf("no choice matched and no Default (States.NoChoiceMatched)")
	}
	return st.Default, nil
}

// evalParameters builds a payload template: "key.$" fields take the value
// of their path (or intrinsic), the others are literal.
func evalParameters(tmpl any, data any) (any, error) {
	return evalParametersWith(tmpl, data, nil)
}

// evalParametersWith is evalParameters where "$$." paths read the context
// object (a Map's ItemSelector: $$.Map.Item.Value and .Index).
func evalParametersWith(tmpl any, data, context any) (any, error) {
	m, ok := tmpl.(map[string]any)
	if !ok {
		return tmpl, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if name, isPath := strings.CutSuffix(k, ".$"); isPath {
			s, _ := v.(string)
			src := data
			if rest, isContext := strings.CutPrefix(s, "$$"); isContext {
				if context == nil {
					return nil, fmt.Errorf("%s: no context object here", k)
				}
				s, src = "$"+rest, context
			}
			val, err := evalPath(s, src)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[name] = val
			continue
		}
		val, err := evalParametersWith(v, data, context)
		if err != nil {
			return nil, err
		}
		out[k] = val
	}
	return out, nil
}

// evalPath reads a reference path: $ or $.a.b.c.
func evalPath(path string, data any) (any, error) {
	if path == "$" {
		return data, nil
	}
	rest, ok := strings.CutPrefix(path, "$.")
	if !ok {
		return nil, fmt.Errorf("path %q not interpreted (only $ and $.a.b)", path)
	}
	cur := data
	for _, part := range strings.Split(rest, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("path %s: %q is not in an object (States.Runtime)", path, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("path %s: no field %q (States.Runtime)", path, part)
		}
	}
	return cur, nil
}

var formatCall = regexp.MustCompile(`^States\.Format\('((?:[^'\\]|\\.)*)'((?:\s*,\s*(?:\$[A-Za-z0-9_.]*|States\.JsonToString\(\$[A-Za-z0-9_.]*\)))*)\)$`)

// evalString evaluates a CausePath: a path to a string, or States.Format.
func evalString(expr string, data any) (string, error) {
	if strings.HasPrefix(expr, "$") {
		v, err := evalPath(expr, data)
		if err != nil {
			return "", err
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s is not a string", expr)
		}
		return s, nil
	}
	m := formatCall.FindStringSubmatch(expr)
	if m == nil {
		return "", fmt.Errorf("intrinsic %q not interpreted (only States.Format with paths)", expr)
	}
	var args []string
	for _, a := range strings.Split(m[2], ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		inner, toJSON := strings.CutPrefix(a, "States.JsonToString(")
		if toJSON {
			a = strings.TrimSuffix(inner, ")")
		}
		v, err := evalPath(a, data)
		if err != nil {
			return "", err
		}
		if toJSON {
			b, _ := json.Marshal(v)
			args = append(args, string(b))
			continue
		}
		args = append(args, fmt.Sprint(v))
	}
	if n := strings.Count(m[1], "{}"); n != len(args) {
		return "", fmt.Errorf("States.Format has %d placeholders and %d arguments", n, len(args))
	}
	s := m[1]
	for _, a := range args {
		s = strings.Replace(s, "{}", a, 1)
	}
	return s, nil
}

// applyResultPath places a result in the state's data: "$" replaces it,
// "$.a.b" sets a field of a copy, no ResultPath means "$".
func applyResultPath(data, result any, resultPath *string) (any, error) {
	path := "$"
	if resultPath != nil {
		path = *resultPath
	}
	if path == "$" {
		return result, nil
	}
	rest, ok := strings.CutPrefix(path, "$.")
	if !ok {
		return nil, fmt.Errorf("ResultPath %q not interpreted", path)
	}
	root, ok := deepCopy(data).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("ResultPath %s on a non-object", path)
	}
	parts := strings.Split(rest, ".")
	cur := root
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = result
	return root, nil
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
