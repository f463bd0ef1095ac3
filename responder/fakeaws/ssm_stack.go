package fakeaws

import (
	"fmt"
	"strconv"
	"time"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// DeployMemberDocuments puts the toolkit's Responder-* documents in the
// account, with their content, as the member documents stack
// (cloudformation/member-documents.yaml) does; the engine only reads them.
// A document already there with other content gets the toolkit's as a new
// version, made the default (the stack's UpdateMethod NewVersion). It
// writes the state directly, not through the API (no call is recorded, no
// fault applies), and panics on an error: it prepares a test.
func (c *Cloud) DeployMemberDocuments() {
	for _, d := range ssmdocuments.Documents() {
		content, err := d.Content()
		if err != nil {
			panic(fmt.Sprintf("fakeaws: DeployMemberDocuments: %v", err))
		}
		c.PutDocumentVersion(d.Name, string(content), true)
	}
}

// PutDocumentVersion puts content in the account as a version of the named
// Command document (creating the document when it does not exist), made the
// default version when asDefault is set, as someone with the right to write
// documents would; it returns the version number. Content equal to the
// latest version's adds no version. It panics on content that is not a
// valid Command document.
func (c *Cloud) PutDocumentVersion(name, content string, asDefault bool) string {
	if _, err := parseDocument(content); err != nil {
		panic(fmt.Sprintf("fakeaws: PutDocumentVersion %s: %v", name, err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.st.Documents[name]
	if !ok {
		d = &ssmDocument{Name: name, Seq: c.nextSeqLocked()}
		c.st.Documents[name] = d
	}
	if n := len(d.Versions); n == 0 || d.Versions[n-1].Content != content {
		d.Versions = append(d.Versions, documentVersion{Content: content, Hash: contentHash(content),
			Created: c.now().Truncate(time.Millisecond)})
	}
	if asDefault || d.DefaultVersion == 0 {
		d.DefaultVersion = len(d.Versions)
	}
	return strconv.Itoa(len(d.Versions))
}
