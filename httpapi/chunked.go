package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// chunkReader decodes an HTTP/1.1 chunked body from br. A Read blocks
// until it has at least one byte of chunk data, then adds every further
// chunk that is already buffered, without blocking again: tokens that
// arrived together leave together (one write, one flush), and a token
// that arrived alone is never held back waiting for the next.
type chunkReader struct {
	br       *bufio.Reader
	left     int  // data bytes left in the current chunk
	needCRLF bool // the CRLF closing the current chunk is still unread
	eof      bool
}

var errBadChunk = errors.New("malformed chunked encoding from upstream")

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.eof {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		blocking := n == 0
		if c.left == 0 {
			if !blocking && !c.frameBuffered() {
				break
			}
			if err := c.nextChunk(); err != nil {
				if n > 0 && err == io.EOF {
					return n, nil
				}
				return n, err
			}
			if c.eof {
				break
			}
		}
		want := min(c.left, len(p)-n)
		if !blocking {
			want = min(want, c.br.Buffered())
			if want == 0 {
				break
			}
		}
		k, err := c.br.Read(p[n : n+want])
		n += k
		c.left -= k
		if c.left == 0 {
			c.needCRLF = true
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	if n == 0 && c.eof {
		return 0, io.EOF
	}
	return n, nil
}

// frameBuffered reports whether the framing before the next chunk's data
// (the previous chunk's CRLF and the size line) is wholly buffered.
func (c *chunkReader) frameBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	if c.needCRLF {
		if len(b) < 2 {
			return false
		}
		b = b[2:]
	}
	return bytes.IndexByte(b, '\n') >= 0
}

// nextChunk consumes the previous chunk's CRLF and the next size line; at
// the last chunk it consumes the trailer and sets eof.
func (c *chunkReader) nextChunk() error {
	if c.needCRLF {
		if err := c.expectCRLF(); err != nil {
			return err
		}
		c.needCRLF = false
	}
	line, err := c.readLine()
	if err != nil {
		return err
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions are ignored
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return errBadChunk
	}
	size := 0
	for _, ch := range line {
		switch {
		case ch >= '0' && ch <= '9':
			size = size<<4 | int(ch-'0')
		case ch >= 'a' && ch <= 'f':
			size = size<<4 | int(ch-'a'+10)
		case ch >= 'A' && ch <= 'F':
			size = size<<4 | int(ch-'A'+10)
		default:
			return errBadChunk
		}
	}
	if size > 0 {
		c.left = size
		return nil
	}
	for { // trailer fields, up to the empty line
		l, err := c.readLine()
		if err != nil {
			return err
		}
		if len(l) == 0 {
			break
		}
	}
	c.eof = true
	return nil
}

func (c *chunkReader) expectCRLF() error {
	b, err := c.br.Peek(2)
	if err != nil {
		return unexpected(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errBadChunk
	}
	_, _ = c.br.Discard(2)
	return nil
}

// readLine reads one CRLF-terminated line (without it), at most 4 KiB.
func (c *chunkReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errBadChunk
		}
		return nil, unexpected(err)
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return line, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
