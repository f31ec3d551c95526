// Command fakellama is a stand-in for llama.cpp's llama-server, for tests,
// demos and benchmarks. It never loads a model; it answers with canned
// tokens, and it is faithful to the recordings of a real llama-server
// (build 9431) embedded beside it: help.txt, version.txt, list-devices.txt
// and props.json (the recorded props.json was cut short after
// "modalities"; its tail here is reconstructed).
//
// # Command line
//
// Every option of the embedded help.txt is accepted; which options take a
// value is parsed from help.txt itself, so "--flash-attn on", "-ngl 99",
// "--control-vector-layer-range 1 2" and bare booleans like "--jinja"
// parse as they do for llama-server. As in llama.cpp, "--foo_bar" means
// "--foo-bar" and "--port=8080" is NOT accepted. An unknown option or a
// positional word prints "error: invalid argument: X" on stderr and exits
// 1; a missing value prints "error while handling argument ..." and exits 1.
//
// Options acted on: -m/--model, --host (default 127.0.0.1), --port
// (default 8080; 0 picks a free port, logged), -a/--alias (comma-separated;
// the first is the model id), --api-key (repeatable, comma-separated),
// --api-key-file, --metrics, --embedding(s), -c/--ctx-size, -np/--parallel.
// --help prints help.txt on stdout, --list-devices prints list-devices.txt
// on stdout, --version prints version.txt on STDERR; all exit 0. LLAMA_ARG_*
// environment variables are ignored.
//
// Without -m (or another model source) the real llama-server becomes a
// multi-model router. fakellama does not: it serves as a single model whose
// id is --alias, else "fakellama". The model id is otherwise the base name
// of -m (e.g. "tiny.gguf"). The model file is not opened unless
// FAKELLAMA_CHECK_MODEL=1.
//
// # Logs
//
// Everything goes to stderr, stdout stays empty (except --help and
// --list-devices). Lines mimic llama-server's: "main: HTTP server is
// listening, hostname: H, port: P, ...", "main: server is listening on
// http://H:P - starting the main loop", "srv  update_slots: all slots are
// idle", and one "srv  log_server_r: done request: METHOD PATH IP STATUS"
// per request.
//
// # HTTP
//
// The port is bound before "loading"; while loading every path answers 503
// with {"error":{"message":"Loading model","type":"unavailable_error",
// "code":503}}. Then: GET /health, /v1/health ({"status":"ok"}); GET
// /v1/models, /models; POST /v1/chat/completions, /chat/completions,
// /v1/completions, /completions, /completion (llama.cpp native); POST
// /v1/embeddings, /embeddings (501 unless --embeddings, then an 8-float
// vector); GET /props, /slots; GET /metrics (501 unless --metrics). Any
// other path or method is 404 {"error":{"message":"File Not Found",...}}.
// 404 and 501 replies carry "Connection: close" and close, like the
// recordings; other replies announce "Keep-Alive: timeout=5, max=100" and
// keep the connection (idle timeout 5 s) for 100 requests: the hundredth
// reply says "Connection: close" and the connection is closed. Every reply has "Server:
// llama.cpp", "Access-Control-Allow-Origin" (the request's Origin, usually
// empty), "X-Fake-Instance" (the model id) and "X-Fake-Pid".
//
// With --api-key, every path except /health, /v1/health, /models and
// /v1/models needs "Authorization: Bearer KEY" (or "X-Api-Key: KEY"), else
// 401 {"error":{"code":401,"message":"Invalid API Key","type":
// "authentication_error"}}.
//
// Completion responses echo the request's "model" (else the model id). A
// generation has FAKELLAMA_TOKENS tokens, or the request's max_tokens,
// max_completion_tokens or n_predict when smaller (finish_reason "length",
// else "stop"). With "stream": true the reply is a chunked
// text/event-stream announced with Keep-Alive: one "data: {...}" event per
// token, each in its own chunk and flushed at once (chat streams start
// with a role chunk), a final event with finish_reason and timings, then
// "data: [DONE]" (OpenAI endpoints only), the last chunk, and then — like
// the real server — the connection is CLOSED although Keep-Alive was
// announced. A client that reuses it gets EOF.
//
// SIGTERM or SIGINT: graceful shutdown (at most 500 ms) and exit 0.
//
// # Fault injection
//
// Environment variables (durations are Go durations like "250ms"):
//
//	FAKELLAMA_LOAD_DELAY=d           /health answers 503 for d after the port is bound (default 0)
//	FAKELLAMA_TOKEN_DELAY=d          sleep d before each generated token (default 0); a client
//	                                 that hangs up meanwhile cancels the generation, streamed or not
//	FAKELLAMA_TOKENS=n               tokens per generation (default 16)
//	FAKELLAMA_CRASH_AFTER_REQUESTS=n exit right after fully answering the nth
//	                                 completion/embedding request
//	FAKELLAMA_CRASH_AFTER=d          exit d after becoming ready
//	FAKELLAMA_EXIT_CODE=c            exit code of the two crashes above (default 1)
//	FAKELLAMA_EXIT_AT_START=c        after binding the port, print llama.cpp's
//	                                 "failed to load model" lines and exit c at once
//	FAKELLAMA_CHECK_MODEL=1          a missing -m file fails like FAKELLAMA_EXIT_AT_START=1
//	FAKELLAMA_IGNORE_SIGTERM=1       ignore SIGTERM (SIGINT and SIGKILL still work)
//	FAKELLAMA_GRANDCHILD=1           start a grandchild (this binary in a hidden
//	                                 sleeping mode) in the same process group; it
//	                                 inherits stderr and lives 10 minutes unless killed
//	FAKELLAMA_GRANDCHILD_PIDFILE=p   write the grandchild's pid to p
//	FAKELLAMA_LONG_LINE=n            print one stderr line of n bytes (newline
//	                                 included) at startup
//	FAKELLAMA_LONG_LINE_EACH=1       print that line again on every request
//	FAKELLAMA_ARGV_FILE=p            write the arguments (os.Args[1:], without the
//	                                 program name) as a JSON array to p, atomically,
//	                                 before parsing them
//	FAKELLAMA_PID_FILE=p             write the pid (decimal, newline) to p, atomically
//
// A malformed value of any of them is an error at startup (exit 1).
package main
