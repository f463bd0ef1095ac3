package cloud

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
)

// ErrNoCredentials is the error of a configuration that names no
// credentials at all: no environment variables, no profile with any, and no
// instance role. The words are the AWS CLI's.
//
//lint:ignore ST1005 the AWS CLI's sentence, printed as it is
var ErrNoCredentials = errors.New("Unable to locate credentials. Configure them with `aws configure` or set AWS_PROFILE.")

// CheckCredentials retrieves the caller's credentials once, before any
// call: a configuration without any gives ErrNoCredentials; one whose
// credentials cannot be had (an expired SSO token, a broken
// credential_process) gives its error. The credentials are cached, so the
// calls that follow do not retrieve them again. With no instance role the
// SDK's last resort (IMDS) answers quickly off EC2 (it has its own short
// timeouts).
func CheckCredentials(ctx context.Context, provider aws.CredentialsProvider) error {
	if provider == nil {
		return nil
	}
	if _, err := provider.Retrieve(ctx); err != nil {
		if aws.IsCredentialsProvider(provider, (*ec2rolecreds.Provider)(nil)) {
			return ErrNoCredentials
		}
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	return nil
}

// MissingProfile returns the profile named by err when Load failed because
// that profile is in neither shared file.
func MissingProfile(err error) (string, bool) {
	var e config.SharedConfigProfileNotExistError
	if errors.As(err, &e) {
		return e.Profile, true
	}
	return "", false
}
