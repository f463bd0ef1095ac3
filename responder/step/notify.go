package step

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/responder-ir/responder/responder/evidence"
)

// Notify publishes the outcome to the SNS topic: a message a person can read
// (what happened, what failed, where the evidence is) followed by the same
// facts as JSON for machines. It runs after every other step.
type Notify struct{}

func (Notify) Name() string    { return "notify" }
func (Notify) Phase() Phase    { return Report }
func (Notify) Needs() []string { return nil }

// NotificationSchema names the format of the JSON part of the message.
const NotificationSchema = "responder.notification/1"

// jsonMarker separates the text from the JSON in the message body.
const jsonMarker = "--- machine-readable (JSON) ---"

// Notification is the JSON part of the message.
type Notification struct {
	Schema string `json:"schema"`
	// Run is what the run did: respond, or release (responder release).
	Run        string                 `json:"run"`
	CaseID     string                 `json:"case_id"`
	InstanceID string                 `json:"instance_id"`
	AccountID  string                 `json:"account_id"`
	Region     string                 `json:"region"`
	Actor      string                 `json:"actor"`
	Status     string                 `json:"status"`
	Location   string                 `json:"location"`
	Manifest   string                 `json:"manifest"`
	Steps      []NotificationStep     `json:"steps"`
	Snapshots  []evidence.Snapshot    `json:"snapshots"`
	Artifacts  []NotificationArtifact `json:"artifacts"`
}

// NotificationStep is one step's outcome in a notification.
type NotificationStep struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Containment is what a containment step read back (held, not-held,
	// unchecked).
	Containment string `json:"containment,omitempty"`
}

// NotificationArtifact is one stored artifact in a notification.
type NotificationArtifact struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Location string `json:"location"`
}

func (s Notify) Run(ctx context.Context, env *Env) Result {
	if env.Clients.TopicARN == "" {
		return Skipped("no SNS topic configured", nil)
	}
	n := s.build(env)
	subject := fmt.Sprintf("[responder] %s: %s %s", n.CaseID, n.InstanceID, n.Status)
	if len(subject) > 100 {
		subject = subject[:100]
	}
	body, err := s.message(n)
	if err != nil {
		return Failed(err, nil)
	}
	if env.Target.DryRun {
		return Skipped("dry run: would publish to "+env.Clients.TopicARN, nil)
	}
	out, err := env.Clients.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(env.Clients.TopicARN),
		Subject:  aws.String(subject),
		Message:  aws.String(body),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"case_id":     {DataType: aws.String("String"), StringValue: aws.String(n.CaseID)},
			"instance_id": {DataType: aws.String("String"), StringValue: aws.String(n.InstanceID)},
			"status":      {DataType: aws.String("String"), StringValue: aws.String(n.Status)},
		},
	})
	if err != nil {
		return Failed(fmt.Errorf("publish to %s: %w", env.Clients.TopicARN, err), nil)
	}
	return OK("published to "+env.Clients.TopicARN, nil, map[string]string{"message_id": aws.ToString(out.MessageId)})
}

func (s Notify) build(env *Env) Notification {
	steps := env.Finished()
	n := Notification{
		Schema: NotificationSchema, Run: "respond", CaseID: env.Target.CaseID, InstanceID: env.Target.InstanceID(),
		AccountID: env.Target.AccountID, Region: env.Target.Region, Actor: env.Target.Actor,
		Status:    env.Status(),
		Location:  env.Clients.Store.Location(env.Target.CaseID, ""),
		Manifest:  env.Clients.Store.Location(env.Target.CaseID, evidence.ManifestName),
		Snapshots: env.Snapshots(),
	}
	if env.Target.Release {
		n.Run = "release"
	}
	for _, r := range steps {
		if r.Name == s.Name() {
			continue
		}
		n.Steps = append(n.Steps, NotificationStep{Name: r.Name, Status: r.Status, Reason: r.Reason, Error: r.Error, Containment: r.Containment})
	}
	for _, a := range env.Artifacts() {
		n.Artifacts = append(n.Artifacts, NotificationArtifact{Path: a.Path, SHA256: a.SHA256, Location: env.Clients.Store.Location(env.Target.CaseID, a.Path)})
	}
	return n
}

func (n Notification) run() string {
	if n.Run == "release" {
		return "release run"
	}
	return "response started"
}

func (s Notify) message(n Notification) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "responder case %s\n\n", n.CaseID)
	fmt.Fprintf(&b, "Instance %s in account %s (%s), %s by %s.\n", n.InstanceID, n.AccountID, n.Region, n.run(), n.Actor)
	fmt.Fprintf(&b, "Result: %s: %s.\n", evidence.StatusHeadline(n.Status), evidence.StatusMeaning(n.Status))
	var failed []NotificationStep
	var open []string
	for _, st := range n.Steps {
		if st.Status == evidence.StatusFailed {
			failed = append(failed, st)
		}
		if st.Containment != "" && st.Containment != evidence.ContainmentHeld {
			open = append(open, fmt.Sprintf("%s (%s)", st.Name, st.Containment))
		}
	}
	if len(open) > 0 {
		fmt.Fprintf(&b, "Still open: %s. Act on it now.\n", strings.Join(open, ", "))
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed:\n")
		for _, st := range failed {
			fmt.Fprintf(&b, "  - %s: %s\n", st.Name, st.Error)
		}
	}
	b.WriteString("\nSteps:\n")
	for _, st := range n.Steps {
		detail := st.Reason
		if st.Error != "" {
			detail = st.Error
		}
		fmt.Fprintf(&b, "  %-8s %-24s %s\n", st.Status, st.Name, detail)
	}
	if len(n.Snapshots) > 0 {
		b.WriteString("\nSnapshots:\n")
		for _, sn := range n.Snapshots {
			fmt.Fprintf(&b, "  %s of %s (%s)\n", sn.SnapshotID, sn.VolumeID, sn.State)
		}
	}
	fmt.Fprintf(&b, "\nEvidence: %s\nCase record: %s\n", n.Location, n.Manifest)
	for _, a := range n.Artifacts {
		fmt.Fprintf(&b, "  %s  sha256 %s\n", a.Path, a.SHA256)
	}
	js, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode notification: %w", err)
	}
	fmt.Fprintf(&b, "\n%s\n%s\n", jsonMarker, js)
	return b.String(), nil
}

// ParseNotification extracts the JSON part of a notification message.
func ParseNotification(message string) (Notification, error) {
	var n Notification
	i := strings.Index(message, jsonMarker)
	if i < 0 {
		return n, fmt.Errorf("message has no machine-readable part")
	}
	err := json.Unmarshal([]byte(message[i+len(jsonMarker):]), &n)
	return n, err
}

// Describe: a notification changes no state of the instance.
func (Notify) Describe() Description {
	return Description{
		NoState: true,
		OnFailure: "The notification was not published: the people and systems subscribed to the topic do not " +
			"know about this response. Tell them another way.",
	}
}
