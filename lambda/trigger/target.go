package trigger

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/responder-ir/responder/responder"
)

// Target is one EC2 instance to respond to.
type Target struct {
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	InstanceID string `json:"instance_id"`
}

func (t Target) String() string {
	return t.AccountID + "/" + t.Region + "/" + t.InstanceID
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
)

// ValidateAccountID checks the format of an AWS account ID: 12 digits.
func ValidateAccountID(id string) error {
	if !accountPattern.MatchString(id) {
		return fmt.Errorf("invalid account ID %s: want 12 digits", quote(id))
	}
	return nil
}

// ValidateRegion checks the format of a Region name (us-east-1, eu-west-3,
// us-gov-west-1...). Whether the Region exists is for AWS to say.
func ValidateRegion(r string) error {
	if !regionPattern.MatchString(r) {
		return fmt.Errorf("invalid Region %s: want a Region name such as us-east-1", quote(r))
	}
	return nil
}

// ValidateInstanceID checks the format of an instance ID (the engine's rule),
// without echoing more than a short prefix of a bad value.
func ValidateInstanceID(id string) error {
	if responder.ValidateInstanceID(id) != nil {
		return fmt.Errorf("invalid instance ID %s: want i- followed by 8 or 17 lowercase hex digits", quote(id))
	}
	return nil
}

// Validate checks every part of the target.
func (t Target) Validate() error {
	if err := ValidateInstanceID(t.InstanceID); err != nil {
		return err
	}
	if err := ValidateAccountID(t.AccountID); err != nil {
		return err
	}
	return ValidateRegion(t.Region)
}

// ParseInstanceARN reads an EC2 instance ARN,
// arn:<partition>:ec2:<region>:<account>:instance/<instance-id>.
func ParseInstanceARN(arn string) (Target, error) {
	t, _, err := parseInstanceARN(arn)
	return t, err
}

// parseInstanceARN is ParseInstanceARN that also returns the ARN's
// partition (aws, aws-cn, aws-us-gov...).
func parseInstanceARN(arn string) (Target, string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "ec2" ||
		!strings.HasPrefix(parts[5], "instance/") {
		return Target{}, "", fmt.Errorf("%s is not an EC2 instance ARN", quote(arn))
	}
	t := Target{AccountID: parts[4], Region: parts[3], InstanceID: strings.TrimPrefix(parts[5], "instance/")}
	if err := t.Validate(); err != nil {
		return Target{}, "", fmt.Errorf("instance ARN %s: %w", quote(arn), err)
	}
	return t, parts[1], nil
}

// quote quotes a value for an error message in at most 80 bytes, quotes and
// escapes included (then says how long the value was): messages echo what
// they reject, never a whole hostile input. Escapes count, since a byte of
// binary input takes four ("\xff").
func quote(s string) string {
	const limit = 80
	if q := strconv.Quote(s); len(q) <= limit {
		return q
	}
	cut := s[:min(len(s), limit)]
	for len(strconv.Quote(cut)) > limit {
		_, size := utf8.DecodeLastRuneInString(cut)
		cut = cut[:len(cut)-size]
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(cut), len(s))
}
