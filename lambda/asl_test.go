package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// This file is a small interpreter of the part of the Amazon States Language
// that statemachine.asl.json uses (JSONPath; Task with the lambda:invoke
// integration, Pass, Choice (comparisons, IsPresent, And), Wait, Succeed,
// Fail; Parameters, ResultSelector,
// ResultPath, Retry, Catch; States.Format in CausePath). It runs the state
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
	Comment     string              `json:"Comment"`
	StartAt     string              `json:"StartAt"`
	States      map[string]aslState `json:"States"`
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
	return &m, nil
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
			out, err := applyResultPath(data, result, st.ResultPath)
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
			out, err := applyResultPath(data, result, st.ResultPath)
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
		for _, c := range st.Catch {
			if matches(c.ErrorEquals, terr.Name) {
				out, err := applyResultPath(data, map[string]any{"Error": terr.Name, "Cause": terr.Cause}, c.ResultPath)
				return out, c.Next, err
			}
		}
		return nil, "", fmt.Errorf("uncaught task error %s: %s", terr.Name, terr.Cause)
	}
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
		ok, err := evalRule(rule, data)
		if err != nil {
			return "", err
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

// evalRule evaluates one choice rule: a comparison of a variable, IsPresent,
// or And of rules.
func evalRule(rule map[string]any, data any) (bool, error) {
	if all, isAnd := rule["And"].([]any); isAnd {
		for _, r := range all {
			sub, _ := r.(map[string]any)
			if ok, err := evalRule(sub, data); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
	variable, _ := rule["Variable"].(string)
	if want, isPresence := rule["IsPresent"].(bool); isPresence {
		_, err := evalPath(variable, data)
		return (err == nil) == want, nil
	}
	v, err := evalPath(variable, data)
	if err != nil {
		return false, err
	}
	var ok, known bool
	for op, want := range rule {
		switch op {
		case "Variable", "Next":
			continue
		case "BooleanEquals", "StringEquals":
			ok, known = v == want, true
		case "NumericGreaterThanEquals":
			f, isNum := v.(float64)
			ok, known = isNum && f >= want.(float64), true
		default:
			return false, fmt.Errorf("choice rule %q not interpreted", op)
		}
	}
	if !known {
		return false, fmt.Errorf("choice rule without comparison: %v", rule)
	}
	return ok, nil
}

// evalParameters builds a payload template: "key.$" fields take the value
// of their path (or intrinsic), the others are literal.
func evalParameters(tmpl any, data any) (any, error) {
	m, ok := tmpl.(map[string]any)
	if !ok {
		return tmpl, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if name, isPath := strings.CutSuffix(k, ".$"); isPath {
			s, _ := v.(string)
			val, err := evalPath(s, data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[name] = val
			continue
		}
		val, err := evalParameters(v, data)
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

var formatCall = regexp.MustCompile(`^States\.Format\('((?:[^'\\]|\\.)*)'((?:\s*,\s*\$[A-Za-z0-9_.]*)*)\)$`)

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
		v, err := evalPath(a, data)
		if err != nil {
			return "", err
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
