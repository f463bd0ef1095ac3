package fakeaws

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fields maps the filter names a Describe call supports to the values a
// resource has for them. tag:<key>, tag-key and tag-value are supported for
// every resource kind with tags.
type fields[T any] map[string]func(T) []string

// checkFilters answers InvalidParameterValue for a filter name the call does
// not support, as EC2 does.
func checkFilters[T any](filters []types.Filter, f fields[T]) error {
	for _, flt := range filters {
		name := aws.ToString(flt.Name)
		if _, ok := f[name]; ok || strings.HasPrefix(name, "tag:") || name == "tag-key" || name == "tag-value" {
			continue
		}
		return apiError("InvalidParameterValue", "The filter '%s' is invalid", name)
	}
	return nil
}

// filter keeps the items that match every filter. A filter matches when any
// of its values matches any of the item's values for that name; values may
// use the wildcards * and ?. Filter names must have been checked.
func filter[T any](items []T, filters []types.Filter, f fields[T], tags func(T) []types.Tag) []T {
	var out []T
	for _, it := range items {
		if matchesAll(it, filters, f, tags) {
			out = append(out, it)
		}
	}
	return out
}

func matchesAll[T any](it T, filters []types.Filter, f fields[T], tags func(T) []types.Tag) bool {
	for _, flt := range filters {
		name := aws.ToString(flt.Name)
		var have []string
		switch {
		case strings.HasPrefix(name, "tag:"):
			if tags != nil {
				key := strings.TrimPrefix(name, "tag:")
				for _, t := range tags(it) {
					if aws.ToString(t.Key) == key {
						have = append(have, aws.ToString(t.Value))
					}
				}
			}
		case name == "tag-key" || name == "tag-value":
			if tags != nil {
				for _, t := range tags(it) {
					if name == "tag-key" {
						have = append(have, aws.ToString(t.Key))
					} else {
						have = append(have, aws.ToString(t.Value))
					}
				}
			}
		default:
			have = f[name](it)
		}
		if !anyMatch(flt.Values, have) {
			return false
		}
	}
	return true
}

func anyMatch(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if globMatch(p, v) {
				return true
			}
		}
	}
	return false
}

// globMatch matches s against an EC2 filter value: * is any run of
// characters, ? any one character.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
	}
}

func one(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
