package integration

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// StubSnapshotLock answers LockSnapshot and DescribeLockedSnapshots, which
// moto does not implement, from a table of locks the proxy keeps: a lock is
// what the last LockSnapshot of the snapshot asked (governance or
// compliance, LockDuration days, CoolOffPeriod hours), and
// DescribeLockedSnapshots lists the locked snapshots among those it names.
// It does not check that a snapshot exists, nor the rules for changing a
// compliance lock (the in-memory fake does); it lets the real binaries lock
// and read back against moto.
func (p *FaultProxy) StubSnapshotLock() *SnapshotLocks {
	locks := &SnapshotLocks{byID: map[string]lockEntry{}}
	p.Handle("LockSnapshot", http.HandlerFunc(locks.lock))
	p.Handle("DescribeLockedSnapshots", http.HandlerFunc(locks.describe))
	return locks
}

// SnapshotLocks is the proxy's table of snapshot locks.
type SnapshotLocks struct {
	mu   sync.Mutex
	byID map[string]lockEntry
}

type lockEntry struct {
	Mode    string
	Days    int
	CoolOff int
	Created time.Time
}

// Locked returns the lock mode of each locked snapshot.
func (s *SnapshotLocks) Locked() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id, l := range s.byID {
		out[id] = l.Mode
	}
	return out
}

func queryForm(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.URL.Query() {
		form[k] = v
	}
	return form, nil
}

func (s *SnapshotLocks) lock(w http.ResponseWriter, r *http.Request) {
	form, err := queryForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, mode := form.Get("SnapshotId"), form.Get("LockMode")
	days, _ := strconv.Atoi(form.Get("LockDuration"))
	coolOff, _ := strconv.Atoi(form.Get("CoolOffPeriod"))
	if id == "" || (mode != "governance" && mode != "compliance") || days < 1 || days > 36500 {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, EC2Error("InvalidParameterValue", "LockSnapshot: SnapshotId, LockMode and LockDuration (1-36500) are required"))
		return
	}
	if form.Get("DryRun") == "true" {
		w.WriteHeader(http.StatusPreconditionFailed)
		_, _ = io.WriteString(w, EC2Error("DryRunOperation", "Request would have succeeded, but DryRun flag is set."))
		return
	}
	e := lockEntry{Mode: mode, Days: days, CoolOff: coolOff, Created: time.Now().UTC()}
	s.mu.Lock()
	s.byID[id] = e
	s.mu.Unlock()
	writeXML(w, "LockSnapshotResponse", lockXML(id, e))
}

func (s *SnapshotLocks) describe(w http.ResponseWriter, r *http.Request) {
	form, err := queryForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ids []string
	for i := 1; ; i++ {
		id := form.Get(fmt.Sprintf("SnapshotId.%d", i))
		if id == "" {
			break
		}
		ids = append(ids, id)
	}
	s.mu.Lock()
	if len(ids) == 0 {
		for id := range s.byID {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	body := "<snapshotSet>"
	for _, id := range ids {
		if e, ok := s.byID[id]; ok {
			body += "<item>" + lockXML(id, e) + "</item>"
		}
	}
	s.mu.Unlock()
	writeXML(w, "DescribeLockedSnapshotsResponse", body+"</snapshotSet>")
}

func lockXML(id string, e lockEntry) string {
	state := e.Mode
	coolOff := ""
	if e.Mode == "compliance" && e.CoolOff > 0 {
		ends := e.Created.Add(time.Duration(e.CoolOff) * time.Hour)
		coolOff = fmt.Sprintf("<coolOffPeriod>%d</coolOffPeriod><coolOffPeriodExpiresOn>%s</coolOffPeriodExpiresOn>", e.CoolOff, ends.Format(time.RFC3339))
		if time.Now().Before(ends) {
			state = "compliance-cooloff"
		}
	}
	expires := e.Created.Add(time.Duration(e.Days) * 24 * time.Hour)
	return "<snapshotId>" + xmlText(id) + "</snapshotId><lockState>" + state + "</lockState>" +
		fmt.Sprintf("<lockDuration>%d</lockDuration>", e.Days) + coolOff +
		"<lockCreatedOn>" + e.Created.Format(time.RFC3339) + "</lockCreatedOn>" +
		"<lockDurationStartTime>" + e.Created.Format(time.RFC3339) + "</lockDurationStartTime>" +
		"<lockExpiresOn>" + expires.Format(time.RFC3339) + "</lockExpiresOn>"
}

func writeXML(w http.ResponseWriter, root, inner string) {
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<"+root+` xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fault-proxy</requestId>`+inner+"</"+root+">")
}

func xmlText(s string) string {
	var b []byte
	b, _ = xml.Marshal(s)
	// xml.Marshal wraps a string in <string>…</string>.
	return string(b[len("<string>") : len(b)-len("</string>")])
}
