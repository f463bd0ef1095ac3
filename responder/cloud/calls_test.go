package cloud_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder/cloud"
)

// skewedEndpoint answers DescribeInstances (or, with fail, an
// UnauthorizedOperation error) with a Date header ahead of the local clock
// by skew.
func skewedEndpoint(t *testing.T, skew time.Duration, fail bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "text/xml")
		if fail {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors><RequestID>req-denied</RequestID></Response>`)
			return
		}
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-ok</requestId><reservationSet/></DescribeInstancesResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Every call records AWS's Date header beside the local clock, whether it
// succeeded or failed, and the skew between them is measured from them.
func TestCallsRecordTheServerDate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		skew     time.Duration
		fail     bool
		min, max time.Duration // the measured skew (local minus AWS)
	}{
		{"in step", 0, false, 0, 0},
		{"local clock 1 h behind", time.Hour, false, -time.Hour, -time.Hour + 2*time.Second},
		{"local clock 10 s ahead, failed call", -10 * time.Second, true, 8 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, skewedEndpoint(t, tc.skew, tc.fail).URL)
			clients, err := cloud.Load(context.Background(), cloud.Options{MaxBackoff: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			log := &cloud.CallLog{}
			before := time.Now()
			_, err = clients.EC2.DescribeInstances(cloud.WithCallLog(context.Background(), log), &ec2.DescribeInstancesInput{})
			if (err != nil) != tc.fail {
				t.Fatalf("err = %v", err)
			}
			calls := log.Calls()
			if len(calls) != 1 || calls[0].ServerDate == nil || calls[0].LocalTime == nil {
				t.Fatalf("calls %+v", calls)
			}
			if lt := *calls[0].LocalTime; lt.Before(before) || lt.After(time.Now()) {
				t.Errorf("local time %v not the time of the call", lt)
			}
			skew, ok := calls[0].ClockSkew()
			if !ok || skew < tc.min || skew > tc.max {
				t.Errorf("skew %v, want %v to %v", skew, tc.min, tc.max)
			}
		})
	}
}
