package main

import (
	"bufio"
	"net/http"
	"strconv"
	"time"
)

// stream answers a "stream": true request the way llama-server does: a
// chunked text/event-stream announced with Keep-Alive, one "data:" event
// per token (each its own chunk, flushed at once), a final event with the
// finish reason and timings, "data: [DONE]" for the OpenAI endpoints, the
// terminating chunk, and then the connection is CLOSED although Keep-Alive
// was announced. net/http cannot close after a chunked reply without
// sending "Connection: close", so the connection is hijacked and the
// response written by hand.
func (s *server) stream(w http.ResponseWriter, r *http.Request, g *genRequest) {
	defer s.processing.Add(-1)
	hj, ok := w.(http.Hijacker)
	if !ok {
		s.reply(w, http.StatusInternalServerError, ctJSON, []byte(`{"error":{"code":500,"message":"streaming unsupported","type":"server_error"}}`), true)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		s.log.printf("srv  log_server_r: hijack %s: %v", r.URL.Path, err)
		return
	}
	s.trackStream(conn, true)
	defer func() {
		s.trackStream(conn, false)
		_ = conn.Close()
	}()
	_ = conn.SetDeadline(time.Time{})
	bw := rw.Writer

	start := time.Now()
	b := make([]byte, 0, 1024)
	b = append(b, "HTTP/1.1 200 OK\r\nKeep-Alive: "+keepAliveValue+"\r\nContent-Type: text/event-stream\r\nServer: llama.cpp\r\nTransfer-Encoding: chunked\r\nAccess-Control-Allow-Origin: "...)
	b = append(b, r.Header.Get("Origin")...)
	b = append(b, "\r\nX-Fake-Instance: "...)
	b = append(b, s.instance[0]...)
	b = append(b, "\r\nX-Fake-Pid: "...)
	b = append(b, s.pid[0]...)
	b = append(b, "\r\n\r\n"...)
	if _, err := bw.Write(b); err != nil {
		return
	}
	ev := make([]byte, 0, 512)
	if g.kind == kindChat {
		ev = append(ev[:0], `data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":`...)
		ev = appendCommon(ev, g, "chat.completion.chunk")
		ev = appendID(ev, g)
		if writeChunk(bw, ev) != nil {
			return
		}
	}
	for i := range g.n {
		if s.f.tokenDelay > 0 {
			time.Sleep(s.f.tokenDelay)
		}
		ev = appendTokenEvent(ev[:0], g, i)
		if writeChunk(bw, ev) != nil {
			s.log.printf("srv  log_server_r: stream %s: client went away after %d tokens", r.URL.Path, i)
			return
		}
		s.predictedTokens.Add(1)
	}
	ev = appendFinalEvent(ev[:0], g, time.Since(start))
	if writeChunk(bw, ev) != nil {
		return
	}
	if g.kind != kindNative {
		if writeChunk(bw, []byte("data: [DONE]\n\n")) != nil {
			return
		}
	}
	if _, err := bw.WriteString("0\r\n\r\n"); err != nil {
		return
	}
	if bw.Flush() != nil {
		return
	}
	s.log.printf("srv  log_server_r: done request: %s %s %s %d", r.Method, r.URL.Path, remoteIP(r.RemoteAddr), http.StatusOK)
	s.trackStream(conn, false)
	_ = conn.Close()
	s.finishGeneration()
}

// writeChunk writes one HTTP chunk holding p and flushes it.
func writeChunk(bw *bufio.Writer, p []byte) error {
	var hdr [20]byte
	h := strconv.AppendInt(hdr[:0], int64(len(p)), 16)
	h = append(h, '\r', '\n')
	_, _ = bw.Write(h)
	_, _ = bw.Write(p)
	_, _ = bw.WriteString("\r\n")
	return bw.Flush()
}

func appendID(b []byte, g *genRequest) []byte {
	b = append(b, `,"id":"`...)
	b = append(b, g.id...)
	return append(b, "\"}\n\n"...)
}

// appendTokenEvent appends the "data:" event carrying token i.
func appendTokenEvent(b []byte, g *genRequest, i int) []byte {
	tok := tokens[i%len(tokens)]
	switch g.kind {
	case kindChat:
		b = append(b, `data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"`...)
		b = append(b, tok...)
		b = append(b, `"}}],"created":`...)
		b = appendCommon(b, g, "chat.completion.chunk")
		return appendID(b, g)
	case kindOAICompletion:
		b = append(b, `data: {"choices":[{"text":"`...)
		b = append(b, tok...)
		b = append(b, `","index":0,"logprobs":null,"finish_reason":null}],"created":`...)
		b = appendCommon(b, g, "text_completion")
		return appendID(b, g)
	default:
		b = append(b, `data: {"index":0,"content":"`...)
		b = append(b, tok...)
		b = append(b, `","tokens":[],"stop":false,"id_slot":-1,"tokens_predicted":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `,"tokens_evaluated":`...)
		b = strconv.AppendInt(b, int64(g.promptN), 10)
		return append(b, "}\n\n"...)
	}
}

// appendFinalEvent appends the last event: finish reason and timings.
func appendFinalEvent(b []byte, g *genRequest, elapsed time.Duration) []byte {
	switch g.kind {
	case kindChat:
		b = append(b, `data: {"choices":[{"finish_reason":"`...)
		b = append(b, g.finish...)
		b = append(b, `","index":0,"delta":{}}],"created":`...)
		b = appendCommon(b, g, "chat.completion.chunk")
		b = append(b, `,"id":"`...)
		b = append(b, g.id...)
		b = append(b, '"')
	case kindOAICompletion:
		b = append(b, `data: {"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"`...)
		b = append(b, g.finish...)
		b = append(b, `"}],"created":`...)
		b = appendCommon(b, g, "text_completion")
		b = append(b, `,"id":"`...)
		b = append(b, g.id...)
		b = append(b, '"')
	default:
		b = append(b, `data: {"index":0,"content":""`...)
		b = appendNativeTail(b, g)
	}
	b = appendTimings(b, g, elapsed)
	return append(b, "}\n\n"...)
}
