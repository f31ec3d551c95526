package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"llamactl/reconcile"
)

func TestDaemonStatus(t *testing.T) {
	synced := time.Unix(1795000000, 0)
	fleet := &fakeFleet{StatusFn: func() reconcile.DaemonStatus {
		return reconcile.DaemonStatus{
			SpecsDir:  "/srv/fleet/current/instances",
			Revision:  "3f2a9c1",
			ReadOnly:  true,
			Error:     "specs dir /srv/fleet/current/instances: no such file or directory",
			LastSync:  synced,
			Instances: 7,
		}
	}}
	ts := newTestServer(t, Config{ManagementKeys: []string{"mk"}, RequireManagementAuth: true}, fleet, ServerInfo{})

	resp, body := ts.do(t, "GET", "/api/v1/status", nil)
	expect(t, resp, body, 401)

	resp, body = ts.do(t, "GET", "/api/v1/status", nil, "Authorization", "Bearer mk")
	expect(t, resp, body, 200)
	var got daemonStatus
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	want := daemonStatus{
		SpecsDir: "/srv/fleet/current/instances", Revision: "3f2a9c1", ReadOnly: true,
		Error:    "specs dir /srv/fleet/current/instances: no such file or directory",
		LastSync: synced.Unix(), Instances: 7,
	}
	if got != want {
		t.Fatalf("status = %+v, want %+v", got, want)
	}

	resp, body = ts.do(t, "POST", "/api/v1/status", nil, "Authorization", "Bearer mk")
	expect(t, resp, body, 405)
}
