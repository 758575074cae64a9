package registry

import (
	"time"

	"go.uber.org/zap"
)

// mappingReleaseEvery is how often the writer hands the registry's mapped
// pages back to the kernel (see ReleaseMapping).
const mappingReleaseEvery = time.Second

// ReleaseMapping keeps the registry's share of the resident memory near its
// working set; the journal's writer calls it every second, and bulk
// operations (a removal batch, a large change) when they finish.
func (r *Registry) ReleaseMapping() {
	if err := releaseMapping(r.db); err != nil {
		r.log.Debug("releasing the registry's mapped pages", zap.Error(err))
	}
}
