package integration

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkRespondMotoLatency runs the real binary against moto through the
// fault proxy with 100 ms added to every AWS request (EC2, STS, S3, SNS),
// the quarantine group already made by an earlier case, and reports the time
// from the start of the response (the run's started_at in the case record)
// to full isolation (the end of the quarantine step), the time to the end of
// the response, and the process wall time (start, configuration, response,
// exit). moto itself takes 5 to 130 ms to answer a call, so time / 100 ms
// overstates the round trips; the fake-cloud benchmark in ./responder counts
// them exactly.
//
//	go test -run '^$' -bench BenchmarkRespondMotoLatency -benchtime 3x ./integration/
func BenchmarkRespondMotoLatency(b *testing.B) {
	const latency = 100 * time.Millisecond
	var isolation, revoked, response, wall time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := setup(b)
		l := f.buildLab()
		if res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", fmt.Sprintf("prep-%d", i),
			"--steps", "quarantine-group,untracking-group", "--evidence-dir", f.caseDir); res.Code != exitOK {
			b.Fatalf("preparing the quarantine group:\n%s", res)
		}
		f.proxy.SetLatency(latency)
		b.StartTimer()
		start := time.Now()
		res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", fmt.Sprintf("bench-%d", i),
			"--evidence-bucket", l.Bucket, "--topic-arn", l.TopicARN, "--output", "json")
		wall += time.Since(start)
		b.StopTimer()
		if res.Code != exitOK {
			b.Fatalf("respond:\n%s", res)
		}
		var m struct {
			Runs []struct {
				StartedAt time.Time `json:"started_at"`
				EndedAt   time.Time `json:"ended_at"`
			} `json:"runs"`
			Steps []struct {
				Name    string    `json:"name"`
				EndedAt time.Time `json:"ended_at"`
			} `json:"steps"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &m); err != nil || len(m.Runs) != 1 {
			b.Fatalf("case record: %v\n%s", err, res.Stdout)
		}
		for _, s := range m.Steps {
			if s.Name == "quarantine" {
				isolation += s.EndedAt.Sub(m.Runs[0].StartedAt)
			}
			if s.Name == "credential-revocation" {
				revoked += s.EndedAt.Sub(m.Runs[0].StartedAt)
			}
		}
		response += m.Runs[0].EndedAt.Sub(m.Runs[0].StartedAt)
		f.proxy.SetLatency(0)
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64((isolation / n).Milliseconds()), "ms-to-isolation")
	b.ReportMetric(float64((revoked / n).Milliseconds()), "ms-to-revoked")
	b.ReportMetric(float64((response / n).Milliseconds()), "ms-response")
	b.ReportMetric(float64((wall / n).Milliseconds()), "ms-process")
}
