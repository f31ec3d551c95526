package main

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// maxBody bounds a request body.
const maxBody = 64 << 20

// kind is the completion API flavour.
type kind int

const (
	kindChat          kind = iota // OpenAI /v1/chat/completions
	kindOAICompletion             // OpenAI /v1/completions
	kindNative                    // llama.cpp /completion
)

// tokens is the canned generation; token i is tokens[i%len(tokens)]. The
// strings need no JSON escaping.
var tokens = [...]string{"serie", " Libert", "Tasks", " Sc", "vement", " hello", " world", " the",
	" quick", " brown", " fox", " jumps", " over", " lazy", " dog", "."}

// genRequest is what the fake needs from a completion request.
type genRequest struct {
	kind    kind
	model   string // echoed back: the request's "model", else the model id
	stream  bool
	n       int    // tokens to generate
	finish  string // "length" when the request's limit cut it, else "stop"
	promptN int
	id      string
	created int64
}

// maxDepth bounds the nesting of a request body: gjson's validator
// recurses once per level, and a body of a few million "[" would overflow
// the stack. A deeper body is answered as a malformed one.
const maxDepth = 512

// shallow tells whether body nests arrays and objects at most maxDepth
// deep (brackets inside strings do not count), without recursion.
func shallow(body []byte) bool {
	depth, inString := 0, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > maxDepth {
				return false
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return true
}

// parseGenRequest reads the fields the fake uses from a JSON body; ok is
// false when the body is not a JSON object. maxTokens is the configured
// generation length (FAKELLAMA_TOKENS).
func parseGenRequest(body []byte, defaultModel string, maxTokens int) (genRequest, bool) {
	if !shallow(body) || !gjson.ValidBytes(body) {
		return genRequest{}, false
	}
	res := gjson.GetManyBytes(body, "model", "stream", "max_tokens", "max_completion_tokens", "n_predict")
	g := genRequest{model: res[0].String(), stream: res[1].Bool(), n: maxTokens, finish: "stop"}
	if res[0].Type != gjson.String || g.model == "" {
		g.model = defaultModel
	}
	for _, lim := range res[2:] {
		if lim.Type == gjson.Number {
			if v := int(lim.Int()); v >= 0 && v <= g.n {
				g.n, g.finish = v, "length"
			}
		}
	}
	g.promptN = len(body)/16 + 1
	g.created = time.Now().Unix()
	return g, true
}

const idLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomID(prefix string) string {
	b := make([]byte, len(prefix)+32)
	copy(b, prefix)
	for i := len(prefix); i < len(b); i++ {
		b[i] = idLetters[rand.IntN(len(idLetters))]
	}
	return string(b)
}

// generate answers a completion request of kind k, streamed or not.
func (s *server) generate(w http.ResponseWriter, r *http.Request, k kind) int {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return s.reply(w, http.StatusBadRequest, ctJSON, []byte(bodyBadJSON), false)
	}
	g, ok := parseGenRequest(body, s.opts.modelID(), s.f.tokens)
	if !ok {
		return s.reply(w, http.StatusBadRequest, ctJSON, []byte(bodyBadJSON), false)
	}
	g.kind = k
	switch k {
	case kindChat:
		g.id = randomID("chatcmpl-")
	case kindOAICompletion:
		g.id = randomID("cmpl-")
	}
	s.processing.Add(1)
	s.promptTokens.Add(int64(g.promptN))
	if g.stream {
		s.stream(w, r, &g)
		return 0
	}
	start := time.Now()
	if i, gone := s.decode(r, g.n); gone {
		// As llama-server, which looks at the connection while it
		// generates, cancels the task of a client that went away.
		s.predictedTokens.Add(int64(i))
		s.processing.Add(-1)
		s.log.printf("srv  cancel_tasks: cancel task, %s %s: client went away after %d tokens", r.Method, r.URL.Path, i)
		return 0
	}
	s.predictedTokens.Add(int64(g.n))
	s.processing.Add(-1)
	b := appendFullBody(make([]byte, 0, 1024), &g, time.Since(start))
	status := s.reply(w, http.StatusOK, ctJSON, b, false)
	s.flush(w)
	s.finishGeneration()
	return status
}

// decode spends FAKELLAMA_TOKEN_DELAY on each of n tokens of a
// non-streamed answer; it stops early, gone, at token i when the client
// closed its connection (net/http cancels the request's context then).
func (s *server) decode(r *http.Request, n int) (i int, gone bool) {
	if s.f.tokenDelay <= 0 {
		return n, false
	}
	t := time.NewTimer(s.f.tokenDelay)
	defer t.Stop()
	for i = range n {
		select {
		case <-t.C:
			t.Reset(s.f.tokenDelay)
		case <-r.Context().Done():
			return i, true
		}
	}
	return n, false
}

// appendContent appends the generated text as a JSON string.
func appendContent(b []byte, n int) []byte {
	b = append(b, '"')
	for i := range n {
		b = append(b, tokens[i%len(tokens)]...)
	}
	return append(b, '"')
}

// appendFullBody appends the non-streamed response body.
func appendFullBody(b []byte, g *genRequest, elapsed time.Duration) []byte {
	switch g.kind {
	case kindChat:
		b = append(b, `{"choices":[{"finish_reason":"`...)
		b = append(b, g.finish...)
		b = append(b, `","index":0,"message":{"role":"assistant","content":`...)
		b = appendContent(b, g.n)
		b = append(b, `}}],"created":`...)
		b = appendCommon(b, g, "chat.completion")
		b = appendUsage(b, g)
		b = append(b, `,"id":"`...)
		b = append(b, g.id...)
		b = append(b, '"')
	case kindOAICompletion:
		b = append(b, `{"choices":[{"text":`...)
		b = appendContent(b, g.n)
		b = append(b, `,"index":0,"logprobs":null,"finish_reason":"`...)
		b = append(b, g.finish...)
		b = append(b, `"}],"created":`...)
		b = appendCommon(b, g, "text_completion")
		b = appendUsage(b, g)
		b = append(b, `,"id":"`...)
		b = append(b, g.id...)
		b = append(b, '"')
	case kindNative:
		b = append(b, `{"index":0,"content":`...)
		b = appendContent(b, g.n)
		b = appendNativeTail(b, g)
	}
	b = appendTimings(b, g, elapsed)
	return append(b, '}')
}

// appendCommon appends created, model, system_fingerprint and object.
func appendCommon(b []byte, g *genRequest, object string) []byte {
	b = strconv.AppendInt(b, g.created, 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"system_fingerprint":"`+fingerprint+`","object":"`...)
	b = append(b, object...)
	return append(b, '"')
}

func appendUsage(b []byte, g *genRequest) []byte {
	b = append(b, `,"usage":{"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(g.n), 10)
	b = append(b, `,"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(g.promptN), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(g.n+g.promptN), 10)
	return append(b, `,"prompt_tokens_details":{"cached_tokens":0}}`...)
}

// appendNativeTail appends the /completion fields after "content".
func appendNativeTail(b []byte, g *genRequest) []byte {
	b = append(b, `,"tokens":[],"id_slot":0,"stop":true,"model":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"tokens_predicted":`...)
	b = strconv.AppendInt(b, int64(g.n), 10)
	b = append(b, `,"tokens_evaluated":`...)
	b = strconv.AppendInt(b, int64(g.promptN), 10)
	b = append(b, `,"generation_settings":`+generationSettings+`,"prompt":"","has_new_line":false,"truncated":false,"stop_type":"`...)
	if g.finish == "length" {
		b = append(b, "limit"...)
	} else {
		b = append(b, "eos"...)
	}
	b = append(b, `","stopping_word":"","tokens_cached":`...)
	return strconv.AppendInt(b, int64(g.n+g.promptN), 10)
}

// appendTimings appends ,"timings":{...} computed from elapsed.
func appendTimings(b []byte, g *genRequest, elapsed time.Duration) []byte {
	const promptMS = 0.5
	predMS := float64(elapsed.Microseconds())/1000 + 0.001
	n := max(g.n, 1)
	b = append(b, `,"timings":{"cache_n":0,"prompt_n":`...)
	b = strconv.AppendInt(b, int64(g.promptN), 10)
	b = append(b, `,"prompt_ms":`...)
	b = strconv.AppendFloat(b, promptMS, 'f', -1, 64)
	b = append(b, `,"prompt_per_token_ms":`...)
	b = strconv.AppendFloat(b, promptMS/float64(g.promptN), 'f', -1, 64)
	b = append(b, `,"prompt_per_second":`...)
	b = strconv.AppendFloat(b, float64(g.promptN)*1000/promptMS, 'f', -1, 64)
	b = append(b, `,"predicted_n":`...)
	b = strconv.AppendInt(b, int64(g.n), 10)
	b = append(b, `,"predicted_ms":`...)
	b = strconv.AppendFloat(b, predMS, 'f', 3, 64)
	b = append(b, `,"predicted_per_token_ms":`...)
	b = strconv.AppendFloat(b, predMS/float64(n), 'f', 5, 64)
	b = append(b, `,"predicted_per_second":`...)
	b = strconv.AppendFloat(b, float64(g.n)*1000/predMS, 'f', 3, 64)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// generationSettings is the recorded /completion "generation_settings".
const generationSettings = `{"seed":4294967295,"temperature":0.800000011920929,"dynatemp_range":0.0,"dynatemp_exponent":1.0,"top_k":40,"top_p":0.949999988079071,"min_p":0.05000000074505806,"top_n_sigma":-1.0,"xtc_probability":0.0,"xtc_threshold":0.10000000149011612,"typical_p":1.0,"repeat_last_n":64,"repeat_penalty":1.0,"presence_penalty":0.0,"frequency_penalty":0.0,"dry_multiplier":0.0,"dry_base":1.75,"dry_allowed_length":2,"dry_penalty_last_n":256,"dry_sequence_breakers":["\n",":","\"","*"],"mirostat":0,"mirostat_tau":5.0,"mirostat_eta":0.10000000149011612,"stop":[],"max_tokens":-1,"n_predict":-1,"n_keep":0,"n_discard":0,"ignore_eos":false,"stream":false,"logit_bias":[],"n_probs":0,"min_keep":0,"grammar":"","grammar_lazy":false,"grammar_triggers":[],"preserved_tokens":[],"chat_format":"Content-only","reasoning_format":"deepseek","reasoning_in_content":false,"generation_prompt":"","samplers":["penalties","dry","top_n_sigma","top_k","typ_p","top_p","min_p","xtc","temperature"],"speculative.types":"none","timings_per_token":false,"post_sampling_probs":false,"backend_sampling":false,"lora":[]}`
