// Command mklab builds a suspect lab (package lab) in an EC2-compatible
// endpoint and prints what it created as JSON. The demo uses it:
//
//	mklab -endpoint http://127.0.0.1:5000 -name demo
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/responder-ir/responder/internal/lab"
)

func main() {
	endpoint := flag.String("endpoint", os.Getenv("AWS_ENDPOINT_URL"), "endpoint URL (default $AWS_ENDPOINT_URL)")
	region := flag.String("region", envOr("AWS_REGION", "us-east-1"), "Region (default $AWS_REGION or us-east-1)")
	name := flag.String("name", "lab", "prefix of every resource name (lowercase letters, digits, hyphens)")
	flag.Parse()
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "mklab: no endpoint: set -endpoint or AWS_ENDPOINT_URL (a lab is for emulators)")
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	clients, err := lab.NewClients(ctx, *endpoint, *region)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mklab:", err)
		os.Exit(1)
	}
	l, err := lab.Build(ctx, clients, *name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mklab:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(l); err != nil {
		fmt.Fprintln(os.Stderr, "mklab:", err)
		os.Exit(1)
	}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
