package cloud

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/responder-ir/responder/responder/evidence"
)

// CallLog collects the calls made under one context. It is safe for
// concurrent use.
type CallLog struct {
	mu    sync.Mutex
	calls []evidence.Call
}

// Calls returns a copy of the calls recorded so far.
func (l *CallLog) Calls() []evidence.Call {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]evidence.Call(nil), l.calls...)
}

func (l *CallLog) add(c evidence.Call) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

type callLogKey struct{}

// WithCallLog returns a context whose AWS calls are recorded in log.
func WithCallLog(ctx context.Context, log *CallLog) context.Context {
	return context.WithValue(ctx, callLogKey{}, log)
}

// RecordCall adds a call to the log carried by ctx, if any. The SDK middleware
// installed by Load calls it; fakes call it too, so that tests see the same
// record as a real run.
func RecordCall(ctx context.Context, c evidence.Call) {
	if log, ok := ctx.Value(callLogKey{}).(*CallLog); ok && log != nil {
		log.add(c)
	}
}

// ErrorCode returns the AWS error code carried by err ("IncorrectInstanceState",
// "RequestLimitExceeded", ...), or "" when err is not an AWS API error.
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// IsErrorCode reports whether err carries one of the given AWS error codes.
func IsErrorCode(err error, codes ...string) bool {
	code := ErrorCode(err)
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return false
}

// requestID returns the request ID of a failed call, when AWS sent one.
func requestID(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

// responseDate is the Date header of the response a call received (its
// last attempt), from the raw response or, for a failed call, the error.
func responseDate(md middleware.Metadata, err error) (time.Time, bool) {
	var header http.Header
	if raw, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && raw != nil {
		header = raw.Header
	}
	var re *smithyhttp.ResponseError
	if header == nil && errors.As(err, &re) && re.Response != nil {
		header = re.Response.Header
	}
	if header == nil || header.Get("Date") == "" {
		return time.Time{}, false
	}
	t, perr := http.ParseTime(header.Get("Date"))
	if perr != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// callRecorder is an Initialize-step middleware: it wraps the whole operation,
// retries included, so one Call is one operation as the caller sees it.
var callRecorder = middleware.InitializeMiddlewareFunc("responder.RecordCall",
	func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		start := time.Now()
		out, md, err := next.HandleInitialize(ctx, in)
		received := time.Now()
		c := evidence.Call{
			Service:   awsmiddleware.GetServiceID(ctx),
			Operation: awsmiddleware.GetOperationName(ctx),
			Duration:  received.Sub(start),
		}
		if date, ok := responseDate(md, err); ok {
			c.ServerDate, c.LocalTime = &date, &received
		}
		if err != nil {
			c.ErrorCode = ErrorCode(err)
			c.RequestID = requestID(err)
		} else if id, ok := awsmiddleware.GetRequestIDMetadata(md); ok {
			c.RequestID = id
		}
		RecordCall(ctx, c)
		return out, md, err
	})

// AddCallRecorder installs the call recorder on a client's middleware stack.
func AddCallRecorder(stack *middleware.Stack) error {
	return stack.Initialize.Add(callRecorder, middleware.After)
}
