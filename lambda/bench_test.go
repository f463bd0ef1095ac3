package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// The benchmarks measure the built bootstrap through the Runtime API server,
// against moto on loopback:
//
//	go test -run '^$' -bench Bootstrap -benchtime 20x ./lambda/
//
// BenchmarkBootstrapColdStart starts a new process per iteration: cold-ms is
// process start to the first answer (a POST /cases), init-ms process start
// to its first poll of the Runtime API. BenchmarkBootstrapPostCases keeps one
// process warm. handler-ms is from handing the event out to receiving the
// answer (the billed duration), for a new instance each time: one lock taken
// (S3 GET, HEAD, PUT) and one execution started. The aws-20ms variants add
// 20 ms to every AWS call (the fault proxy), closer to a call within a Region
// than moto on loopback.

func BenchmarkBootstrapColdStart(b *testing.B) {
	w := newAWSWorld(b, startMoto(b), "bench-cold")
	bin := bootstrapBinary(b)
	var cold, initDur, handler []time.Duration
	b.ResetTimer()
	for i := range b.N {
		rt := newRuntimeAPI(b)
		f := startFunction(b, bin, rt, w.env)
		res := rt.Invoke(b, postCases(fmt.Sprintf(`{"instance_id": "i-0c%015x"}`, i)))
		if status, body := apiResult(b, res); status != http.StatusAccepted {
			b.Fatalf("POST /cases: %d %v", status, body)
		}
		cold = append(cold, res.At.Sub(f.started))
		initDur = append(initDur, rt.FirstGet().Sub(f.started))
		handler = append(handler, res.HandlerTime)
		_ = f.cmd.Process.Kill()
	}
	b.StopTimer()
	report(b, "cold", cold)
	report(b, "init", initDur)
	report(b, "handler", handler)
}

func BenchmarkBootstrapPostCases(b *testing.B) {
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		name := "moto"
		if latency > 0 {
			name = fmt.Sprintf("aws-%dms", latency.Milliseconds())
		}
		b.Run(name, func(b *testing.B) {
			w := newAWSWorld(b, startMoto(b), "bench-warm")
			rt := newRuntimeAPI(b)
			startFunction(b, bootstrapBinary(b), rt, w.env)
			// Warm up: the first answer pays the cold start.
			rt.Invoke(b, postCases(`{"instance_id": "i-0ffffffffffffffff"}`))
			w.proxy.SetLatency(latency)
			var handler []time.Duration
			b.ResetTimer()
			for i := range b.N {
				res := rt.Invoke(b, postCases(fmt.Sprintf(`{"instance_id": "i-0a%015x"}`, i)))
				if status, body := apiResult(b, res); status != http.StatusAccepted {
					b.Fatalf("POST /cases: %d %v", status, body)
				}
				handler = append(handler, res.HandlerTime)
			}
			b.StopTimer()
			report(b, "handler", handler)
		})
	}
}

// report adds the mean and the 95th percentile of ds, in milliseconds.
func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(sum/time.Duration(len(ds))), name+"-ms")
	b.ReportMetric(ms(ds[(len(ds)*95+99)/100-1]), name+"-p95-ms")
}
