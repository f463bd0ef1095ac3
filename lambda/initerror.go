package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"
)

// initErrorType is the type Lambda shows for a function that cannot start
// because of its configuration.
const initErrorType = "Runtime.ConfigInvalid"

// initFailed reports an error of the function's start to the Lambda Runtime
// API (POST /runtime/init/error), so that the invoker sees it instead of a
// bare "exit status 1", writes it to the log, and exits.
func initFailed(err error) {
	msg := "responder: cannot start: " + err.Error()
	body, _ := json.Marshal(map[string]any{"errorMessage": msg, "errorType": initErrorType, "stackTrace": []string{}})
	line, _ := json.Marshal(map[string]any{"time": time.Now().UTC(), "level": "ERROR", "msg": msg})
	fmt.Fprintln(os.Stderr, string(line))
	if api := os.Getenv("AWS_LAMBDA_RUNTIME_API"); api != "" {
		req, rerr := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
		if rerr == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Lambda-Runtime-Function-Error-Type", initErrorType)
			client := &http.Client{Timeout: 5 * time.Second}
			if resp, perr := client.Do(req); perr == nil {
				resp.Body.Close()
			}
		}
	}
	os.Exit(1)
}
