package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(grandchildEnv) == "1" {
		os.Exit(grandchildMain())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// logger writes whole lines to stderr; one mutex keeps lines unmixed.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	fmt.Fprintf(l.w, format+"\n", args...)
	l.mu.Unlock()
}

func (l *logger) write(b []byte) {
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
}

// shutdownGrace bounds the graceful shutdown after SIGTERM.
const shutdownGrace = 500 * time.Millisecond

// run is the whole program; it returns the exit code. Fault-injected
// crashes call os.Exit directly, like a real crash would.
func run(args []string, stdout, stderr io.Writer) int {
	f, err := readFaults(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if f.ignoreSIGTERM {
		signal.Ignore(syscall.SIGTERM)
	}
	if f.argvFile != "" {
		if err := writeArgv(f.argvFile, args); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
	}
	if f.pidFile != "" {
		if err := writeFileAtomic(f.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
	}
	opts, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	switch opts.action {
	case "help":
		_, _ = io.WriteString(stdout, helpText)
		return 0
	case "version":
		_, _ = io.WriteString(stderr, versionText)
		return 0
	case "list-devices":
		_, _ = io.WriteString(stdout, listDevicesText)
		return 0
	}
	log := &logger{w: stderr}
	return serve(opts, f, log)
}

func serve(opts *options, f *faults, log *logger) int {
	sigs := make(chan os.Signal, 1)
	if f.ignoreSIGTERM {
		signal.Notify(sigs, os.Interrupt)
	} else {
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	}
	defer signal.Stop(sigs)

	log.printf("build: 9431 (bf87261d4) with GNU 12.2.0 for Linux x86_64")
	log.printf("system info: n_threads = %d, n_threads_batch = %d, total_threads = %d", runtime.NumCPU(), runtime.NumCPU(), runtime.NumCPU())
	log.printf("")
	log.write(longLine(f.longLine))
	if f.checkModel && opts.model != "" {
		if _, err := os.Stat(opts.model); err != nil {
			modelLoadFailure(log, opts.model)
			return 1
		}
	}
	log.printf("main: binding port with default address family")
	addr := net.JoinHostPort(opts.host, strconv.Itoa(opts.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.printf("start: couldn't bind HTTP server socket, hostname: %s, port: %d", opts.host, opts.port)
		log.printf("main: exiting due to HTTP server error")
		return 1
	}
	port := ln.Addr().(*net.TCPAddr).Port
	log.printf("main: HTTP server is listening, hostname: %s, port: %d, http threads: %d", opts.host, port, runtime.NumCPU()+1)
	if f.exitAtStartSet {
		_ = ln.Close()
		modelLoadFailure(log, opts.model)
		return f.exitAtStart
	}
	if f.grandchild {
		pid, err := spawnGrandchild()
		if err != nil {
			log.printf("error: %v", err)
			return 1
		}
		if f.grandchildPidFile != "" {
			if err := writeFileAtomic(f.grandchildPidFile, []byte(strconv.Itoa(pid)+"\n")); err != nil {
				log.printf("error: %v", err)
				return 1
			}
		}
	}

	s := newServer(opts, f, log)
	srv := &http.Server{
		Handler:           s,
		ConnContext:       connContext,
		IdleTimeout:       5 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	log.printf("main: loading model")
	log.printf("srv    load_model: loading model '%s'", opts.model)
	loaded := time.NewTimer(f.loadDelay)
	defer loaded.Stop()
	var crash <-chan time.Time
	for {
		select {
		case <-loaded.C:
			s.ready.Store(true)
			log.printf("srv    load_model: initializing slots, n_slots = %d", s.nSlots)
			log.printf("main: model loaded")
			log.printf("main: server is listening on http://%s - starting the main loop", net.JoinHostPort(opts.host, strconv.Itoa(port)))
			log.printf("srv  update_slots: all slots are idle")
			if f.crashAfter > 0 {
				t := time.NewTimer(f.crashAfter)
				defer t.Stop()
				crash = t.C
			}
		case <-crash:
			log.printf("fakellama: crashing %s after becoming ready (FAKELLAMA_CRASH_AFTER)", f.crashAfter)
			return f.exitCode
		case err := <-serveErr:
			log.printf("main: exiting due to HTTP server error: %v", err)
			return 1
		case <-sigs:
			log.printf("srv    operator(): operator(): cleaning up before exit...")
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				log.printf("main: shutdown: %v", err)
			}
			s.stopStreams()
			return 0
		}
	}
}

// modelLoadFailure prints what llama-server prints when the model file
// cannot be opened.
func modelLoadFailure(log *logger, model string) {
	log.printf("gguf_init_from_file: failed to open GGUF file '%s'", model)
	log.printf("llama_model_load: error loading model: llama_model_loader: failed to load model from %s", model)
	log.printf("llama_model_load_from_file_impl: failed to load model")
	log.printf("common_init_from_params: failed to load model '%s'", model)
	log.printf("srv    load_model: failed to load model, '%s'", model)
	log.printf("srv    operator(): operator(): cleaning up before exit...")
	log.printf("main: exiting due to model loading error")
}
