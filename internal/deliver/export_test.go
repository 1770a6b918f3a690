package deliver

import "time"

// SetRecordTimeout sets how long d's attempts may take to be recorded
// after their exchange (recordTimeout otherwise).
func SetRecordTimeout(d *Dispatcher, timeout time.Duration) { d.recordTimeout = timeout }
