package fakeaws

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// apiError returns an AWS API error with the given code, as the service
// answers it (client fault unless the code is a server-side one).
func apiError(code, format string, args ...any) error {
	fault := smithy.FaultClient
	if serverFaultCodes[code] {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...), Fault: fault}
}

var serverFaultCodes = map[string]bool{
	"InternalError": true, "InternalFailure": true, "ServiceUnavailable": true,
	"Unavailable": true, "SlowDown": true, "InternalServerError": true,
}

// httpStatus is the HTTP status AWS answers a code with; 400 unless listed.
var httpStatus = map[string]int{
	"UnauthorizedOperation":  http.StatusForbidden,
	"AccessDenied":           http.StatusForbidden,
	"AccessDeniedException":  http.StatusForbidden,
	"InvalidAccessException": http.StatusUnauthorized, // Security Hub: not subscribed
	"Forbidden":              http.StatusForbidden,
	"AuthorizationError":     http.StatusForbidden,
	"RequestLimitExceeded":   http.StatusServiceUnavailable,
	"SlowDown":               http.StatusServiceUnavailable,
	"ServiceUnavailable":     http.StatusServiceUnavailable,
	"Unavailable":            http.StatusServiceUnavailable,
	"InternalError":          http.StatusInternalServerError,
	"InternalFailure":        http.StatusInternalServerError,
	"NoSuchBucket":           http.StatusNotFound,
	"NoSuchEntity":           http.StatusNotFound,
	"LimitExceeded":          http.StatusConflict,
	"NoSuchKey":              http.StatusNotFound,
	"NoSuchVersion":          http.StatusNotFound,
	"NoSuchUpload":           http.StatusNotFound,
	"InternalServerError":    http.StatusInternalServerError,
	"NotFound":               http.StatusNotFound,
	"PreconditionFailed":     http.StatusPreconditionFailed,
	"DryRunOperation":        http.StatusPreconditionFailed, // EC2 answers a successful dry run with 412
	"NotImplemented":         http.StatusNotImplemented,
	"MethodNotAllowed":       http.StatusMethodNotAllowed,
}

// wrapError wraps an API error the way the SDK's clients return it:
// OperationError{ResponseError{API error}}, the API error typed where the SDK
// models it for that operation.
func wrapError(service, op, requestID string, err error) error {
	var generic *smithy.GenericAPIError
	if !errors.As(err, &generic) {
		return &smithy.OperationError{ServiceID: service, OperationName: op, Err: err}
	}
	status := http.StatusBadRequest
	if s, ok := httpStatus[generic.Code]; ok {
		status = s
	}
	resp := &http.Response{StatusCode: status, Header: http.Header{}}
	resp.Header.Set("X-Amzn-Requestid", requestID)
	return &smithy.OperationError{
		ServiceID:     service,
		OperationName: op,
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: resp},
				Err:      modelled(service, op, generic),
			},
			RequestID: requestID,
		},
	}
}

// modelled returns the SDK's typed error for the codes the real client
// deserializes into one (see the service's deserializers.go), and the generic
// error otherwise.
func modelled(service, op string, e *smithy.GenericAPIError) error {
	msg := &e.Message
	if service == serviceSSM {
		// SSM's client deserializes every modelled error of the service,
		// whatever the operation.
		return ssmModelled(e)
	}
	switch service + ":" + op + ":" + e.Code {
	case "S3:GetObject:NoSuchKey":
		return &s3types.NoSuchKey{Message: msg}
	case "S3:GetObject:InvalidObjectState":
		return &s3types.InvalidObjectState{Message: msg}
	case "S3:HeadObject:NotFound":
		return &s3types.NotFound{Message: msg}
	case "S3:PutObject:InvalidRequest":
		return &s3types.InvalidRequest{Message: msg}
	case "S3:AbortMultipartUpload:NoSuchUpload":
		return &s3types.NoSuchUpload{Message: msg}
	case "SNS:Publish:NotFound":
		return &snstypes.NotFoundException{Message: msg}
	case "SNS:Publish:InvalidParameter":
		return &snstypes.InvalidParameterException{Message: msg}
	case "SNS:Publish:AuthorizationError":
		return &snstypes.AuthorizationErrorException{Message: msg}
	case "SNS:Publish:ParameterValueInvalid":
		return &snstypes.InvalidParameterValueException{Message: msg}
	case "SNS:Publish:InternalError":
		return &snstypes.InternalErrorException{Message: msg}
	case "KMS:DescribeKey:NotFoundException", "KMS:Sign:NotFoundException", "KMS:GetPublicKey:NotFoundException":
		return &kmstypes.NotFoundException{Message: msg}
	case "KMS:Sign:DisabledException", "KMS:GetPublicKey:DisabledException":
		return &kmstypes.DisabledException{Message: msg}
	case "KMS:Sign:InvalidKeyUsageException", "KMS:GetPublicKey:InvalidKeyUsageException":
		return &kmstypes.InvalidKeyUsageException{Message: msg}
	}
	if service == serviceIAM {
		return iamModelled(e)
	}
	return e
}

// ssmModelled returns the SSM client's typed error for the codes the fake
// answers.
func ssmModelled(e *smithy.GenericAPIError) error {
	msg := &e.Message
	switch e.Code {
	case "InvalidInstanceId":
		return &ssmtypes.InvalidInstanceId{Message: msg}
	case "InvocationDoesNotExist":
		return &ssmtypes.InvocationDoesNotExist{Message: msg}
	case "InvalidCommandId":
		return &ssmtypes.InvalidCommandId{Message: msg}
	case "InvalidDocument":
		return &ssmtypes.InvalidDocument{Message: msg}
	case "InvalidDocumentContent":
		return &ssmtypes.InvalidDocumentContent{Message: msg}
	case "InvalidDocumentVersion":
		return &ssmtypes.InvalidDocumentVersion{Message: msg}
	case "InvalidDocumentSchemaVersion":
		return &ssmtypes.InvalidDocumentSchemaVersion{Message: msg}
	case "InvalidDocumentType":
		return &ssmtypes.InvalidDocumentType{Message: msg}
	case "DocumentAlreadyExists":
		return &ssmtypes.DocumentAlreadyExists{Message: msg}
	case "DuplicateDocumentContent":
		return &ssmtypes.DuplicateDocumentContent{Message: msg}
	case "MaxDocumentSizeExceeded":
		return &ssmtypes.MaxDocumentSizeExceeded{Message: msg}
	case "InvalidParameters":
		return &ssmtypes.InvalidParameters{Message: msg}
	case "InvalidFilterKey":
		return &ssmtypes.InvalidFilterKey{Message: msg}
	case "InvalidInstanceInformationFilterValue":
		return &ssmtypes.InvalidInstanceInformationFilterValue{Message: msg}
	case "InvalidPluginName":
		return &ssmtypes.InvalidPluginName{Message: msg}
	case "InternalServerError":
		return &ssmtypes.InternalServerError{Message: msg}
	}
	return e
}

// iamModelled returns the IAM client's typed error for the codes the fake
// answers (the operations it serves model these four).
func iamModelled(e *smithy.GenericAPIError) error {
	msg := &e.Message
	switch e.Code {
	case "NoSuchEntity":
		return &iamtypes.NoSuchEntityException{Message: msg}
	case "UnmodifiableEntity":
		return &iamtypes.UnmodifiableEntityException{Message: msg}
	case "MalformedPolicyDocument":
		return &iamtypes.MalformedPolicyDocumentException{Message: msg}
	case "LimitExceeded":
		return &iamtypes.LimitExceededException{Message: msg}
	}
	return e
}

func isCanceled(err error) bool {
	var c *smithy.CanceledError
	return errors.As(err, &c)
}

// deniedError is the answer of a denied operation, per service.
func deniedError(service, op, caller string) error {
	switch service {
	case serviceEC2:
		return apiError("UnauthorizedOperation", "You are not authorized to perform this operation. User: %s is not authorized to perform: ec2:%s", caller, op)
	case serviceS3:
		if op == "HeadObject" {
			return apiError("Forbidden", "Forbidden") // HEAD answers carry no body
		}
		return apiError("AccessDenied", "User: %s is not authorized to perform: s3:%s", caller, op)
	case serviceSNS:
		return apiError("AuthorizationError", "User: %s is not authorized to perform: SNS:%s", caller, op)
	case serviceKMS:
		return apiError("AccessDeniedException", "User: %s is not authorized to perform: kms:%s", caller, op)
	case serviceSSM:
		return apiError("AccessDeniedException", "User: %s is not authorized to perform: ssm:%s", caller, op)
	case serviceCloudTrail, serviceGuardDuty, serviceSecurityHub:
		return apiError("AccessDeniedException", "User: %s is not authorized to perform: %s:%s", caller, strings.ToLower(service), op)
	default:
		return apiError("AccessDenied", "User: %s is not authorized to perform: %s:%s", caller, strings.ToLower(service), op)
	}
}

// idKind describes one kind of EC2 ID: its prefix and the codes and messages
// AWS answers for a malformed or unknown one.
type idKind struct {
	prefix    string
	malformed string // error code for an ID that is not prefix-<hex>
	notFound  string // error code for a well-formed ID that does not exist
	one, many string // NotFound messages, for one ID and for several (%s = IDs)
}

var (
	kindInstance = idKind{"i", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound",
		"The instance ID '%s' does not exist", "The instance IDs '%s' do not exist"}
	kindVolume = idKind{"vol", "InvalidVolumeID.Malformed", "InvalidVolume.NotFound",
		"The volume '%s' does not exist.", "The volumes '%s' do not exist."}
	kindSnapshot = idKind{"snap", "InvalidSnapshotID.Malformed", "InvalidSnapshot.NotFound",
		"The snapshot '%s' does not exist.", "The snapshots '%s' do not exist."}
	kindGroup = idKind{"sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound",
		"The security group '%s' does not exist", "The security groups '%s' do not exist"}
	kindInterface = idKind{"eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound",
		"The networkInterface ID '%s' does not exist", "The networkInterface IDs '%s' do not exist"}
	kindVPC = idKind{"vpc", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound",
		"The vpc ID '%s' does not exist", "The vpc IDs '%s' do not exist"}
	kindSubnet = idKind{"subnet", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound",
		"The subnet ID '%s' does not exist", "The subnet IDs '%s' do not exist"}
	// AWS has no Malformed code for association IDs: any unknown one is NotFound.
	kindAssociation = idKind{"iip-assoc", "InvalidAssociationID.NotFound", "InvalidAssociationID.NotFound",
		"The association ID '%s' does not exist", "The association IDs '%s' do not exist"}
	kindRule = idKind{"sgr", "InvalidSecurityGroupRuleId.Malformed", "InvalidSecurityGroupRuleId.NotFound",
		"The security group rule ID '%s' does not exist", "The security group rule IDs '%s' do not exist"}
	kindEndpoint = idKind{"vpce", "InvalidVpcEndpointId.Malformed", "InvalidVpcEndpointId.NotFound",
		"The VpcEndPoint ID '%s' does not exist", "The VpcEndPoint IDs '%s' do not exist"}
	// Prefix list IDs are pl- and 8 hex digits (AWS-managed lists) or 17.
	kindPrefixList = idKind{"pl", "InvalidPrefixListID.Malformed", "InvalidPrefixListID.NotFound",
		"The prefix list ID '%s' does not exist", "The prefix list IDs '%s' do not exist"}
)

// EC2 IDs are the prefix and 8 (older resources) or 17 lower-case hex digits.
var hexIDPattern = regexp.MustCompile(`^([0-9a-f]{8}|[0-9a-f]{17})$`)

// wellFormed reports whether id is a well-formed ID of this kind.
func (k idKind) wellFormed(id string) bool {
	rest, ok := strings.CutPrefix(id, k.prefix+"-")
	return ok && hexIDPattern.MatchString(rest)
}

// check answers the Malformed error for the first malformed ID, then the
// NotFound error naming every unknown one; nil when all exist.
func (k idKind) check(ids []string, exists func(string) bool) error {
	var missing []string
	for _, id := range ids {
		if !k.wellFormed(id) {
			if k.malformed == k.notFound {
				return k.notFoundError([]string{id})
			}
			return apiError(k.malformed, "Invalid id: %q (expecting %q)", id, k.prefix+"-...")
		}
		if !exists(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return k.notFoundError(missing)
	}
	return nil
}

func (k idKind) notFoundError(ids []string) error {
	if len(ids) == 1 {
		return apiError(k.notFound, k.one, ids[0])
	}
	return apiError(k.notFound, k.many, strings.Join(ids, ", "))
}

// missingParameter is EC2's answer to a request without a required parameter.
func missingParameter(name string) error {
	return apiError("MissingParameter", "The request must contain the parameter %s", name)
}

// notModelled answers a request that uses a part of an API the fake does not
// model, rather than pretending it worked.
func notModelled(op, what string) error {
	return apiError("UnsupportedOperation", "fakeaws: %s %s is not modelled", op, what)
}

func incorrectInstanceState(id string, state any) error {
	return apiError("IncorrectInstanceState",
		"The instance '%s' is not in a state from which the requested operation can be performed (current state: %v).", id, state)
}
