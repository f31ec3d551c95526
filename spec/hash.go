package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// Hash is the canonical hash (sha256, hex) of what a restart depends on:
// binary, argv, env (sorted), host and an explicit port. Key order,
// comments and the supervision fields (state, on_demand_start,
// idle_timeout, restart policy, timeouts) do not change it. A spec whose
// argv cannot be built hashes its error, so fixing it changes the hash.
func (s *Spec) Hash(binary string, flags *Flags) string {
	type envVar struct{ K, V string }
	canon := struct {
		Binary string
		Argv   []string
		Err    string   `json:",omitempty"`
		Env    []envVar `json:",omitempty"`
		Host   *string  `json:",omitempty"`
		Port   *int     `json:",omitempty"`
	}{Binary: binary, Host: s.Host, Port: s.Port}
	argv, err := s.Args(flags)
	if err != nil {
		canon.Err = err.Error()
	}
	canon.Argv = argv
	for k, v := range s.Env {
		canon.Env = append(canon.Env, envVar{k, v})
	}
	sort.Slice(canon.Env, func(i, j int) bool { return canon.Env[i].K < canon.Env[j].K })
	b, _ := json.Marshal(canon) // strings, ints and slices only: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
