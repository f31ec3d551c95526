package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/valyala/fasthttp"
)

// keySet checks presented API keys in constant time. Only the SHA-256
// digests of the keys are kept; a presented key is hashed once (fast, not a
// password hash: keys are long random tokens) and compared against every
// digest, so timing reveals neither which key matched nor how much of it.
type keySet struct {
	digests [][sha256.Size]byte
}

func newKeySet(lists ...[]string) *keySet {
	ks := &keySet{}
	for _, l := range lists {
		for _, k := range l {
			if k == "" {
				continue
			}
			ks.digests = append(ks.digests, sha256.Sum256([]byte(k)))
		}
	}
	return ks
}

func (ks *keySet) empty() bool { return len(ks.digests) == 0 }

// match reports whether key is one of the set.
func (ks *keySet) match(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	d := sha256.Sum256(key)
	ok := 0
	for i := range ks.digests {
		ok |= subtle.ConstantTimeCompare(d[:], ks.digests[i][:])
	}
	return ok == 1
}

var (
	hdrXAPIKey = []byte("X-API-Key")
	bearer     = []byte("bearer ")
)

// presentedKey returns the key of "Authorization: Bearer KEY", else of
// "X-API-Key: KEY"; nil when there is none.
func presentedKey(h *fasthttp.RequestHeader) []byte {
	if a := h.PeekBytes([]byte(fasthttp.HeaderAuthorization)); len(a) > len(bearer) &&
		bytes.EqualFold(a[:len(bearer)], bearer) {
		return bytes.TrimSpace(a[len(bearer):])
	}
	return bytes.TrimSpace(h.PeekBytes(hdrXAPIKey))
}
