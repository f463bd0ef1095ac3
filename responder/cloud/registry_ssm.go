package cloud

import (
	"context"
	"reflect"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SSM lists every AWS Systems Manager operation the toolkit calls, in the
// workload account: whether the suspect is a managed node, the Responder-*
// documents it runs, and the commands that collect OS-level evidence.
//
// The toolkit reads the documents and never writes one: they are the member
// documents stack's (cloudformation/member-documents.yaml). A role that may
// write a document and send commands may run any script, as root, on every
// managed instance.
type SSM interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	DescribeDocument(context.Context, *ssm.DescribeDocumentInput, ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error)
	GetDocument(context.Context, *ssm.GetDocumentInput, ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	CancelCommand(context.Context, *ssm.CancelCommandInput, ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error)
	// ListCommands finds a command a staged collection sent but could not
	// record (a retried send stage sends no second command).
	ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

// Presigner signs S3 requests that the suspect instance then makes itself:
// it uploads its evidence and fetches the staged tools without ever holding
// credentials for the evidence store. A presigned request is authorised by
// the signer's own permissions (s3:PutObject for PutObject and UploadPart,
// s3:GetObject for GetObject), and dies with the credentials that signed it.
type Presigner interface {
	PresignGetObject(context.Context, *s3.GetObjectInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	PresignPutObject(context.Context, *s3.PutObjectInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	PresignUploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

var (
	_ SSM       = (*ssm.Client)(nil)
	_ Presigner = (*s3.PresignClient)(nil)
)

func init() {
	Register("ssm", WorkloadAccount, reflect.TypeFor[SSM]())
}
