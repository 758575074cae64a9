package origin

import "slices"

// Read helpers on Content that the staging replicas and the admin API need.
// They live here, next to their users, so that content.go stays as it is.

// SourceTimeAsOf returns the source time of the newest event at or before t
// (0 when there is none): the state a replica reaches once it has applied
// the log up to t.
func (c *Content) SourceTimeAsOf(t int64) int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(c.events, t+1, func(e Event, t int64) int {
		switch {
		case e.SourceTime < t:
			return -1
		case e.SourceTime > t:
			return 1
		}
		return 0
	})
	if i == 0 {
		return 0
	}
	return c.events[i-1].SourceTime
}

// EventCount is the number of events in the log.
func (c *Content) EventCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.events)
}

// AppendEvents adds raw events to the log, each with the next source time,
// in one step (a reader sees all of them or none), and returns them with
// their source times; no document changes. Tests use it for events the
// store never writes itself, such as a kind or state the edge does not
// know.
func (c *Content) AppendEvents(evs ...Event) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Event, len(evs))
	for i, ev := range evs {
		ev.SourceTime = c.nextSourceTime()
		ev.ChangedProperties = slices.Clone(ev.ChangedProperties)
		c.events = append(c.events, ev)
		out[i] = ev
	}
	c.changed.Broadcast()
	return out
}
