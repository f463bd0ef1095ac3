// Command bootstrap is the responder's AWS Lambda function, for the
// provided.al2023 runtime (build it with lambda/build.sh). It is a thin shell:
// it hands every event, whatever its kind, to trigger.Handler and returns its
// answer; a failure is reported to the invoker under the trigger's error type
// so that Step Functions can catch and retry by name. lambda/README.md lists
// the events served and the configuration.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/responder-ir/responder/lambda/trigger"
)

func main() {
	h, err := trigger.New(context.Background(), os.Getenv)
	if err != nil {
		initFailed(err)
	}
	// The runtime library's own lines (a reported failure) become JSON too.
	slog.SetDefault(h.Log)
	lambda.Start(func(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
		out, err := h.Handle(ctx, event)
		if err != nil {
			return nil, invokeError(err)
		}
		return out, nil
	})
}

// invokeError reports err under its trigger error type.
func invokeError(err error) error {
	typ := trigger.ErrorInternal
	var f *trigger.Failure
	if errors.As(err, &f) {
		typ = f.Type
	}
	return messages.InvokeResponse_Error{Type: typ, Message: err.Error()}
}
