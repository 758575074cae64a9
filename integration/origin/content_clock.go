package origin

import "time"

// SetClock replaces the clock that stamps the source times of new events
// (default time.Now). Source times are wall-clock milliseconds that run
// ahead of the clock when more than one event a millisecond is written: a
// seed of 50,000 documents written at once would put them almost a minute
// ahead, and every replica that lags would be that much behind the
// primary until the clock caught up. A benchmark that seeds that much
// stamps its seed with a clock in the past, then sets time.Now again.
func (c *Content) SetClock(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}
