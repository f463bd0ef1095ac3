package cloud

// Waiting returns how many callers wait for a token of action's bucket.
func (p *Pacer) Waiting(action string) int {
	b := p.bucket(action)
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, q := range b.waiting {
		for _, w := range q {
			if !w.gone {
				n++
			}
		}
	}
	return n
}
