package evidence

// CaseStatus says how a run ended, from its step records: a failed
// containment step outweighs everything else, because the instance may not be
// isolated.
func CaseStatus(steps []StepRecord) string {
	status := CaseContained
	for _, s := range steps {
		if s.Status != StatusFailed {
			continue
		}
		if s.Phase == "contain" {
			return CaseContainmentFailed
		}
		status = CaseContainedIncomplete
	}
	return status
}
