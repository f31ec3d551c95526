package httpapi

import (
	"github.com/valyala/fasthttp"

	"llamactl/reconcile"
)

// daemonStatus is the JSON of GET /api/v1/status: the specs directory as a
// whole. Error is set while the directory cannot be read (missing,
// unreadable, mid-swap); the fleet is not pruned meanwhile.
type daemonStatus struct {
	SpecsDir  string `json:"specs_dir"`
	Revision  string `json:"revision,omitempty"`
	ReadOnly  bool   `json:"readonly"`
	Error     string `json:"error,omitempty"`
	LastSync  int64  `json:"last_sync"` // unix seconds of the last good read; 0 = none yet
	Instances int    `json:"instances"`
}

func toDaemonStatus(st reconcile.DaemonStatus) daemonStatus {
	return daemonStatus{
		SpecsDir:  st.SpecsDir,
		Revision:  st.Revision,
		ReadOnly:  st.ReadOnly,
		Error:     st.Error,
		LastSync:  unixOrZero(st.LastSync),
		Instances: st.Instances,
	}
}

// serveStatus answers GET /api/v1/status.
func (s *Server) serveStatus(ctx *fasthttp.RequestCtx) {
	if !isGet(ctx) {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, toDaemonStatus(s.fleet.Status()))
}
