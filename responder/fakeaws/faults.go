package fakeaws

import (
	"fmt"
	"reflect"

	"github.com/responder-ir/responder/responder/cloud"
)

// fault is one injected error: the next `remaining` calls of an operation
// answer code (forever when remaining < 0).
type fault struct {
	code      string
	remaining int
}

// Fail makes the next `times` calls of operation op (for example
// "CreateSnapshots") fail with the AWS error code, before the input is looked
// at and without changing anything; times < 0 makes every later call fail.
// Faults queue: Fail(op, "A", 1) then Fail(op, "B", 1) fails one call with A,
// then one with B. It panics when op is not an operation of the registry.
func (c *Cloud) Fail(op, code string, times int) {
	serviceOf(op) // panics on an unknown operation
	if times == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults[op] = append(c.faults[op], &fault{code: code, remaining: times})
}

// Throttle makes the next `times` calls of op fail with the service's
// throttling code: RequestLimitExceeded (EC2), SlowDown (S3), Throttled (SNS),
// Throttling (STS, IAM), ThrottlingException (KMS, SSM). The real SDK retries these; the fake does not, so the
// caller sees each one.
func (c *Cloud) Throttle(op string, times int) {
	code := map[string]string{
		serviceEC2: "RequestLimitExceeded",
		serviceS3:  "SlowDown",
		serviceSNS: "Throttled",
		serviceSTS: "Throttling",
		serviceKMS: "ThrottlingException",
		serviceSSM: "ThrottlingException",
		serviceIAM: "Throttling",

		serviceCloudTrail:  "ThrottlingException",
		serviceGuardDuty:   "TooManyRequestsException",
		serviceSecurityHub: "TooManyRequestsException",
	}[serviceOf(op)]
	c.Fail(op, code, times)
}

// Deny makes operation op answer as if the caller lacked its IAM permission:
// UnauthorizedOperation (EC2, dry runs included), AccessDenied (S3, STS;
// Forbidden for HeadObject), AuthorizationError (SNS), AccessDeniedException
// (KMS, SSM), AccessDenied (IAM). Input errors still come
// first, as they do on AWS for a dry run.
func (c *Cloud) Deny(op string) {
	serviceOf(op)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.denied[op] = true
}

// Ignore makes the next `times` calls of operation op answer success
// without changing anything (times < 0: every later call): an endpoint that
// acknowledges a change it does not make, which only a read-back catches.
// Use it for operations whose answer carries nothing the caller reads (the
// Modify*, Disassociate* and Put*LegalHold kind).
func (c *Cloud) Ignore(op string, times int) {
	serviceOf(op)
	if times == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ignored[op] = times
}

// takeIgnoreLocked consumes one ignored call of op; true when this one is.
func (c *Cloud) takeIgnoreLocked(op string) bool {
	n := c.ignored[op]
	switch {
	case n == 0:
		return false
	case n > 0:
		c.ignored[op] = n - 1
	}
	return true
}

// Allow undoes Deny.
func (c *Cloud) Allow(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.denied, op)
}

// ClearFaults removes every injected fault and denial.
func (c *Cloud) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = map[string][]*fault{}
	c.denied = map[string]bool{}
	c.ignored = map[string]int{}
}

// takeFaultLocked consumes the next injected fault of op, if any.
func (c *Cloud) takeFaultLocked(service, op string) error {
	queue := c.faults[op]
	if len(queue) == 0 {
		return nil
	}
	f := queue[0]
	if f.remaining > 0 {
		f.remaining--
		if f.remaining == 0 {
			c.faults[op] = queue[1:]
		}
	}
	return apiError(f.code, "%s", faultMessage(service, f.code))
}

func faultMessage(service, code string) string {
	switch code {
	case "RequestLimitExceeded":
		return "Request limit exceeded."
	case "SlowDown":
		return "Please reduce your request rate."
	case "Throttled", "Throttling":
		return "Rate exceeded"
	case "InternalError":
		return "An internal error has occurred"
	case "ServiceUnavailable", "Unavailable":
		return "The service is unavailable. Please try again shortly."
	}
	return fmt.Sprintf("fakeaws: injected %s fault %s", service, code)
}

// operationServices maps every operation of the registry to its service ID.
var operationServices = func() map[string]string {
	m := map[string]string{}
	for service, ifaces := range map[string][]reflect.Type{
		serviceEC2: {reflect.TypeFor[cloud.EC2]()},
		serviceS3:  {reflect.TypeFor[cloud.S3]()},
		serviceSNS: {reflect.TypeFor[cloud.SNS]()},
		serviceSTS: {reflect.TypeFor[cloud.STS]()},
		serviceKMS: {reflect.TypeFor[cloud.KMS](), reflect.TypeFor[cloud.Signing]()},
		serviceSSM: {reflect.TypeFor[cloud.SSM]()},

		serviceAutoScaling: {reflect.TypeFor[cloud.AutoScaling]()},
		serviceELBv2:       {reflect.TypeFor[cloud.ELBv2]()},
		serviceELB:         {reflect.TypeFor[cloud.ELB]()},
		serviceIAM:         {reflect.TypeFor[cloud.IAM]()},

		serviceCloudTrail:  {reflect.TypeFor[cloud.CloudTrail]()},
		serviceGuardDuty:   {reflect.TypeFor[cloud.GuardDuty]()},
		serviceSecurityHub: {reflect.TypeFor[cloud.SecurityHubFindings]()},
	} {
		for _, iface := range ifaces {
			for i := range iface.NumMethod() {
				m[iface.Method(i).Name] = service
			}
		}
	}
	return m
}()

// serviceOf returns the service of a registry operation. It panics on any
// other name, so that a misspelt operation in a test fails loudly instead of
// never firing.
func serviceOf(op string) string {
	s, ok := operationServices[op]
	if !ok {
		panic(fmt.Sprintf("fakeaws: %q is not an operation of the cloud registry", op))
	}
	return s
}
