package couponq

import "time"

// AdmitEvent describes one admission attempt, for metrics.
type AdmitEvent struct {
	Campaign string
	Mode     Mode
	// Err is the admission's error (nil when accepted).
	Err error
	// Code is Code(Err): why the admission was refused, "" when accepted.
	Code string
	// Repeat is true when the user already held the returned ticket.
	Repeat bool
	// Duration is the whole admission's time.
	Duration time.Duration
	// LockWait is the time V1 spent obtaining its lock.
	LockWait time.Duration
}
