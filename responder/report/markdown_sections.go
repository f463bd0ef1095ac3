package report

import (
	"fmt"
	"strings"
	"time"
)

// headline writes what an investigator reads first.
func (m *mdWriter) headline(r *Report) {
	h := r.Headline
	m.line("## At a glance")
	m.line("")
	rows := [][]string{
		{"Status", "**" + text(h.StatusHeadline) + "**"},
		{"Time to isolation", text(h.TimeToIsolationText)},
		{"Still open", text(openText(h))},
		{"Evidence", text(evidenceText(h))},
		{"Verification", "**" + text(strings.ToUpper(h.Verification)) + "**: " + text(h.VerificationDetail)},
	}
	m.table([]string{"", ""}, rows, "")
}

// openText says what is still open, in the case status's words.
func openText(h Headline) string {
	if len(h.Open) > 0 {
		return strings.Join(h.Open, "; ")
	}
	if h.Isolated || h.Status == "released" {
		return "nothing: every containment read-back of the last run held"
	}
	return "no containment read-back is recorded as not held; the status says what the case claims"
}

func evidenceText(h Headline) string {
	return fmt.Sprintf("%d artifact(s), %s in total", h.EvidenceCount, sizeText(h.EvidenceBytes))
}

// sizeText says a size in bytes, and in KiB/MiB/GiB above 1 KiB.
func sizeText(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, u := float64(n)/1024, 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s (%d bytes)", v, units[u], n)
}

// offset says how long after a run's start something happened: "+1.2s".
func offset(start, at time.Time) string {
	return "+" + duration(at.Sub(start))
}

// runTimeline writes one run's steps, with the actor said once, and the
// isolation moment.
func (m *mdWriter) runTimeline(r *Report, c RunChart) {
	m.line("### Run %d: %s, %s", c.Run, text(c.Playbook), text(c.Status))
	m.line("")
	m.line("By %s, %s to %s.", who(c.Actor, c.ActingAs), ts(c.StartedAt), ts(c.EndedAt))
	if c.IsolatedAt != nil {
		m.line("**Isolated** at %s (%s): every containment read-back of this run had held by then.", ts(*c.IsolatedAt), offset(c.StartedAt, *c.IsolatedAt))
	}
	m.line("")
	lanes := map[string]string{}
	for _, b := range c.Bars {
		lanes[b.Step] = b.Lane
	}
	var rows [][]string
	for _, e := range r.Timeline {
		if e.Kind != KindStep || e.Run != c.Run {
			continue
		}
		detail := text(e.Detail)
		if e.Error != "" {
			detail = "**ERROR:** " + text(e.Error)
		}
		rows = append(rows, []string{ts(e.At), offset(c.StartedAt, e.At), text(lanes[e.Action]), text(e.Action),
			strings.ToUpper(e.Status), duration(e.EndedAt.Sub(e.At)), detail})
	}
	m.table([]string{"When", "After start", "Lane", "Action", "Result", "Took", "Detail"}, rows, "No step is recorded in this run.")
}

// custodyTimeline writes the custody actions, each with its actor.
func (m *mdWriter) custodyTimeline(r *Report) {
	var rows [][]string
	for _, e := range r.Timeline {
		if e.Kind != KindCustody {
			continue
		}
		detail := text(e.Detail)
		if e.Error != "" {
			detail = "**ERROR:** " + text(e.Error)
		}
		rows = append(rows, []string{ts(e.At), who(e.Actor, e.ActingAs), text(e.Action), strings.ToUpper(e.Status), detail + " (record " + code(e.Record) + ")"})
	}
	if len(rows) == 0 {
		return
	}
	m.line("### Custody actions")
	m.line("")
	m.table([]string{"When", "Who", "Action", "Result", "Detail"}, rows, "")
}

func sourceText(s *Source) string {
	if s == nil {
		return "-"
	}
	out := code(s.Path)
	if s.Member != "" {
		out += " → " + code(s.Member)
	}
	return out + " (SHA-256 " + code(s.SHA256) + ")"
}

func rulesText(g GroupRules) string {
	name := code(g.ID)
	if g.Name != "" {
		name = text(g.Name) + " (" + code(g.ID) + ")"
	}
	switch {
	case !g.RulesKnown:
		return name + ": rules not recorded"
	case len(g.Rules) == 0:
		return name + ": no rule (all traffic refused)"
	}
	rules := make([]string, len(g.Rules))
	for i, r := range g.Rules {
		rules[i] = text(r)
	}
	return name + ": " + strings.Join(rules, "; ")
}

func groupsText(gs []GroupRules) string {
	if len(gs) == 0 {
		return "none recorded"
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = rulesText(g)
	}
	return strings.Join(out, "<br>")
}

// exposure writes the security groups, the instance profile and the user
// data.
func (m *mdWriter) exposure(r *Report) {
	sg := r.SecurityGroups
	m.line("## Security groups before and after")
	m.line("")
	if sg.Source != nil {
		m.line("Rules of before from %s, read before any change.", sourceText(sg.Source))
		m.line("")
	}
	if sg.Note != "" {
		m.line("> %s.", text(upperFirst(sg.Note)))
		m.line("")
	}
	var rows [][]string
	for _, i := range sg.Interfaces {
		changes := make([]string, len(i.Changes))
		for k, c := range i.Changes {
			changes[k] = "**" + text(c.String()) + "**"
		}
		diff := strings.Join(changes, "<br>")
		if diff == "" {
			diff = "no rule changed"
		}
		if i.Note != "" {
			diff += " (" + text(i.Note) + ")"
		}
		rows = append(rows, []string{code(i.Interface), groupsText(i.Before), groupsText(i.After), diff})
	}
	m.table([]string{"Interface", "Before", "After", "Difference"}, rows, "No interface's groups are recorded.")

	p := r.Profile
	m.line("## Instance profile and role")
	m.line("")
	policies := "not recorded"
	if p.PoliciesKnown {
		policies = "none"
		if len(p.Policies) > 0 {
			names := make([]string, len(p.Policies))
			for i, n := range p.Policies {
				names[i] = code(n)
			}
			policies = strings.Join(names, "<br>")
		}
	}
	m.table([]string{"", ""}, [][]string{
		{"Instance profile before", code(p.Before)},
		{"Instance profile after", code(p.After)},
		{"Role", code(p.RoleARN)},
		{"Role's policies", policies},
	}, "")
	if p.Note != "" {
		m.line("> %s.", text(upperFirst(p.Note)))
		m.line("")
	}

	u := r.UserData
	m.line("## User data")
	m.line("")
	m.line("%s%s.", text(upperFirst(u.Detail)), sourceSuffix(u.Source))
	m.line("")
	for _, rc := range u.RemoteCode {
		m.line("> **Fetches and runs remote code**, line %d: %s: %s", rc.Line, text(rc.Why), code(rc.Text))
		m.line("")
	}
	if u.Status == UserDataShown {
		fence := "```"
		for strings.Contains(u.Text, fence) {
			fence += "`"
		}
		m.line("%s", fence+"text")
		m.line("%s", strings.TrimRight(u.Text, "\n"))
		m.line("%s", fence)
		m.line("")
	}
}

func sourceSuffix(s *Source) string {
	if s == nil {
		return ""
	}
	return " (from " + sourceText(s) + ")"
}

// indicators writes the indicators of interest.
func (m *mdWriter) indicators(r *Report) {
	in := r.Indicators
	m.line("## Indicators of interest")
	m.line("")
	if in.Status != IndicatorsFound {
		m.line("%s.", text(upperFirst(in.Detail)))
		m.line("")
		return
	}
	m.line("From %s: %s.", sourceText(in.Source), text(in.Detail))
	m.line("")
	for _, n := range in.Notes {
		m.line("> %s.", text(upperFirst(n)))
		m.line("")
	}
	var rows [][]string
	for _, s := range in.Listening {
		scope := "all addresses"
		if s.Loopback {
			scope = "loopback only"
		}
		rows = append(rows, []string{text(s.Protocol), code(s.Local), scope, text(strings.Join(s.Processes, ", ")), code(s.Source.Member)})
	}
	m.line("### Listening sockets")
	m.line("")
	m.table([]string{"Protocol", "Local", "Reachable on", "Process", "From"}, rows, "None.")
	rows = nil
	for _, s := range in.Outbound {
		rows = append(rows, []string{text(s.Protocol), code(s.Local), code(s.Remote), text(s.State), text(strings.Join(s.Processes, ", ")), code(s.Source.Member)})
	}
	m.line("### Outbound connections")
	m.line("")
	m.table([]string{"Protocol", "Local", "Remote", "State", "Process", "From"}, rows, "None.")
	rows = nil
	for _, u := range in.Users {
		why := text(u.Why)
		if why != "" {
			why = "**" + why + "**"
		}
		rows = append(rows, []string{code(u.Name), fmt.Sprint(u.UID), code(u.Home), code(u.Shell), text(u.Password), why, code(u.Source.Member)})
	}
	m.line("### Local accounts that can log in")
	m.line("")
	m.table([]string{"Account", "UID", "Home", "Shell", "Password", "Stands out", "From"}, rows, "None.")
	rows = nil
	for _, c := range in.Cron {
		rc := text(c.RemoteCode)
		if rc != "" {
			rc = "**fetches and runs remote code: " + rc + "**"
		}
		rows = append(rows, []string{code(c.File), fmt.Sprint(c.Line), code(c.Text), rc, code(c.Source.Member)})
	}
	m.line("### Cron entries")
	m.line("")
	m.table([]string{"File", "Line", "Entry", "Note", "From"}, rows, "None.")
}

// caseTimeline writes the CloudTrail events about the instance among the
// response's moments (nothing when the case holds no event).
func (m *mdWriter) caseTimeline(r *Report) {
	moments := caseMoments(r)
	if len(moments) == 0 {
		return
	}
	var rows [][]string
	for _, c := range moments {
		what := text(c.What)
		if c.Response {
			what = "**" + what + "**"
		}
		who := "-"
		if c.Who != "" {
			who = code(c.Who)
		}
		rows = append(rows, []string{ts(c.At), what, who, text(c.Text)})
	}
	m.line("### CloudTrail events and the response")
	m.line("")
	m.line("The CloudTrail management events about the instance (from the cloud's record, below) among the moments of the response, oldest first; the response's own moments in bold.")
	m.line("")
	m.table([]string{"When", "What", "Who", "Detail"}, rows, "")
}
