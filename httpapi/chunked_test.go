package httpapi

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
	"testing/iotest"
)

func encodeChunks(parts ...string) []byte {
	var b bytes.Buffer
	w := httputil.NewChunkedWriter(&b)
	for _, p := range parts {
		_, _ = w.Write([]byte(p))
	}
	_ = w.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}

func TestChunkReader(t *testing.T) {
	parts := []string{"data: a\n\n", "data: bb\n\n", strings.Repeat("x", 5000), "data: [DONE]\n\n"}
	enc := encodeChunks(parts...)
	want := strings.Join(parts, "")
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(enc) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(enc)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(enc)) },
	}
	for name, mk := range readers {
		for _, bufSize := range []int{1, 7, 4096} {
			t.Run(name, func(t *testing.T) {
				cr := &chunkReader{br: bufio.NewReaderSize(mk(), 16)}
				var out bytes.Buffer
				buf := make([]byte, bufSize)
				for {
					n, err := cr.Read(buf)
					out.Write(buf[:n])
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("read: %v", err)
					}
				}
				if out.String() != want {
					t.Fatalf("got %q", out.String())
				}
			})
		}
	}
}

func TestChunkReaderCoalescesBufferedChunks(t *testing.T) {
	enc := encodeChunks("a", "b", "c")
	cr := &chunkReader{br: bufio.NewReader(bytes.NewReader(enc))}
	buf := make([]byte, 64)
	n, err := cr.Read(buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("first read %q %v, want all buffered chunks at once", buf[:n], err)
	}
	if n, err := cr.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("then %d %v", n, err)
	}
}

func TestChunkReaderErrors(t *testing.T) {
	for name, in := range map[string]string{
		"bad size":      "zz\r\nabc\r\n0\r\n\r\n",
		"missing crlf":  "3\r\nabcX\r\n0\r\n\r\n",
		"truncated":     "5\r\nab",
		"no last chunk": "3\r\nabc\r\n",
		"huge size":     "1234567890abcdef0\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			cr := &chunkReader{br: bufio.NewReaderSize(strings.NewReader(in), 16)}
			_, err := io.ReadAll(cr)
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func FuzzChunkReader(f *testing.F) {
	f.Add(encodeChunks("hello", "world"), 3)
	f.Add([]byte("3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, bufSize int) {
		bufSize = max(1, min(bufSize, 1<<16))
		cr := &chunkReader{br: bufio.NewReaderSize(bytes.NewReader(in), 16)}
		buf := make([]byte, bufSize)
		for range 1 << 16 {
			n, err := cr.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("n = %d", n)
			}
			if err != nil {
				return
			}
		}
	})
}
