package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"llamactl/httpapi"
	"llamactl/reconcile"
	"llamactl/runtime"
)

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fset.String("config", os.Getenv(configEnv), "config file (YAML or TOML); env "+configEnv)
	// Flags that override config keys; only flags given on the command
	// line take part, so the file and environment keep their say.
	overrides := []struct{ flag, key, help string }{
		{"specs", "specs_dir", "directory of instance spec files"},
		{"listen", "listen", "HOST:PORT to serve the API and proxy on"},
		{"data-dir", "data_dir", "directory for logs and runtime state"},
		{"llama-server", "llama_server", "llama-server binary (path or name on PATH)"},
		{"log-level", "log.level", "trace, debug, info, warn or error"},
		{"log-format", "log.format", "auto, json or console"},
	}
	vals := map[string]*string{}
	for _, o := range overrides {
		vals[o.flag] = fset.String(o.flag, "", o.help+" (config key "+o.key+")")
	}
	readonly := fset.Bool("readonly", false, "refuse API writes to specs (config key readonly)")
	keep := fset.Bool("keep-children", false, "leave instances running on exit for the next llamactl to adopt (config key shutdown.keep_children)")
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: llamactl serve [flags]

Run the daemon: watch the specs directory, keep llama-server processes
matching it, serve the management API (/api/v1) and the OpenAI-compatible
proxy (/v1). Precedence: defaults < config file < LLAMACTL_* env < flags.

Flags:
`)
		fset.PrintDefaults()
	}
	if code, ok := parseFlags(fset, args, stderr); !ok {
		return code
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "llamactl serve: unexpected argument %q\n", fset.Arg(0))
		return 2
	}
	flagMap := map[string]any{}
	fset.Visit(func(f *flag.Flag) {
		for _, o := range overrides {
			if o.flag == f.Name {
				flagMap[o.key] = *vals[o.flag]
			}
		}
		switch f.Name {
		case "readonly":
			flagMap["readonly"] = *readonly
		case "keep-children":
			flagMap["shutdown.keep_children"] = *keep
		}
	})
	cfg, err := loadConfig(*configPath, os.Environ(), flagMap)
	if err != nil {
		fmt.Fprintf(stderr, "llamactl: %v\n", err)
		return 2
	}
	if err := checkBinaryPath(cfg.LlamaServer); err != nil {
		fmt.Fprintf(stderr, "llamactl: %v\n", err)
		return 2
	}
	// A log reader that goes away (tee or a pager ended first by the same
	// Ctrl-C, a journald restart) must not kill the daemon at its next
	// line, leaving its instances running: with SIGPIPE caught, a write to
	// the broken pipe fails with EPIPE instead. Caught, not ignored: an
	// ignored signal would stay ignored in the llama-server children.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	log, lines, flush := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	defer flush()
	for _, w := range cfg.Warnings {
		log.Warn().Msg(w)
	}
	if err := httpapi.CheckBind(cfg.Listen, cfg.httpConfig(&log, lines)); err != nil {
		fmt.Fprintf(stderr, "llamactl: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log, lines); err != nil {
		log.Error().Err(err).Msg("llamactl stopped with an error")
		return 1
	}
	return 0
}

func (c *Config) httpConfig(log *zerolog.Logger, accessLog io.Writer) httpapi.Config {
	return httpapi.Config{
		ManagementKeys:        c.Auth.ManagementKeys,
		InferenceKeys:         c.Auth.InferenceKeys,
		RequireManagementAuth: c.Auth.RequireManagementAuth,
		RequireInferenceAuth:  c.Auth.RequireInferenceAuth,
		MaxBodyBytes:          c.Limits.MaxBodyBytes,
		CORSAllowOrigins:      c.CORS.AllowOrigins,
		Logger:                log,
		AccessLog:             accessLog,
	}
}

// serve runs the daemon until ctx ends, then shuts down gracefully.
// Access lines go to accessLog (see httpapi.Config.AccessLog).
func serve(ctx context.Context, cfg *Config, log zerolog.Logger, accessLog io.Writer) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	// SIGHUP asks for a resync; caught from the start, since its default
	// action would end the daemon abruptly while it loads.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	probeCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	flags, err := probeBinary(probeCtx, cfg.LlamaServer)
	cancel()
	if err != nil {
		// Instances cannot start without the binary, but the API still
		// serves and shows why; a binary installed later is used as is.
		log.Error().Err(err).Str("llama_server", cfg.LlamaServer).Msg("cannot query llama-server; its flags are not checked")
		flags = nil
	} else {
		log.Info().Str("llama_server", cfg.LlamaServer).Str("version", flags.Version).Msg("llama-server found")
	}

	mgr, err := runtime.NewManager(runtime.ManagerOptions{
		DataDir:        cfg.DataDir,
		PortMin:        cfg.PortRange.Min,
		PortMax:        cfg.PortRange.Max,
		KeepOnShutdown: cfg.Shutdown.KeepChildren,
		Logger:         &log,
		// 0 (off) is -1 to the runtime, whose zero means the default.
		LivenessInterval: cmp.Or(cfg.Health.Interval, -1),
		LivenessTimeout:  cfg.Health.Timeout,
		LivenessFailures: cfg.Health.Failures,
	})
	if err != nil {
		return fmt.Errorf("start runtime: %w", err)
	}
	loop, err := reconcile.New(reconcile.Options{
		SpecsDir:       cfg.SpecsDir,
		ReadOnly:       cfg.ReadOnly,
		GitWritable:    cfg.ReadOnlySet && !cfg.ReadOnly,
		Debounce:       cfg.Reconcile.Debounce,
		ResyncInterval: cfg.Reconcile.ResyncInterval,
		Workers:        cfg.Reconcile.Workers,
		Binary:         cfg.LlamaServer,
		Flags:          flags,
		Defaults: reconcile.Defaults{
			StopTimeout:    cfg.Defaults.StopTimeout,
			StartupTimeout: cfg.Defaults.StartupTimeout,
			RestartDelay:   time.Duration(cfg.Defaults.RestartDelaySeconds) * time.Second,
			MaxRestarts:    cfg.Defaults.MaxRestarts,
		},
		Runtime: mgr,
		Logger:  &log,
	})
	if err != nil {
		return errors.Join(fmt.Errorf("start reconcile: %w", err), mgr.Shutdown(context.Background()))
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), mgr.Shutdown(context.Background()))
	}
	srv := httpapi.New(cfg.httpConfig(&log, accessLog), loop, httpapi.ServerInfo{Binary: cfg.LlamaServer})

	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan error, 1)
	go func() { loopDone <- loop.Run(loopCtx) }()
	select {
	case <-loop.Loaded():
	case err := <-loopDone:
		ln.Close()
		stopLoop()
		return errors.Join(fmt.Errorf("load specs: %w", err), mgr.Shutdown(context.Background()))
	case <-ctx.Done():
		// A signal while the first passes run (they may wait for an
		// adopted child to stop): stop without serving.
		log.Info().Msg("shutting down before the specs were loaded")
		ln.Close()
		stopLoop()
		loopErr := <-loopDone
		stopCtx, cancelStop := context.WithTimeout(context.Background(), stopBudget(cfg.Defaults.StopTimeout, loop.List()))
		defer cancelStop()
		return errors.Join(loopErr, mgr.Shutdown(stopCtx))
	}
	// Once a good read of the specs dir has been applied, every instance
	// still desired has had its chance to adopt its recorded child; the
	// rest are leftovers of a previous run. A dir missing at start
	// (Loaded, but not Synced) reaps nothing until it can be read.
	reapCtx, stopReap := context.WithCancel(ctx)
	reapDone := make(chan struct{})
	reap := func() {
		defer close(reapDone)
		select {
		case <-loop.Synced():
		case <-reapCtx.Done():
			return
		}
		// An instance whose file is broken or claimed twice keeps its
		// child until the file is fixed (adopted) or deleted (stopped).
		desired := func(name string) bool { _, err := loop.Get(name); return err == nil }
		if err := mgr.ReapStaleExcept(reapCtx, desired); err != nil {
			log.Warn().Err(err).Msg("clean up children of a previous run")
		}
	}
	select {
	case <-loop.Synced():
		reap()
	default:
		log.Warn().Msg("specs dir not read yet: children of a previous run are kept until it is")
		go reap()
	}

	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	log.Info().Str("listen", ln.Addr().String()).Str("specs_dir", cfg.SpecsDir).Msg("llamactl ready")

	var runErr error
wait:
	for {
		select {
		case <-hup:
			log.Info().Msg("SIGHUP: full resync")
			loop.Resync()
		case err := <-serveDone:
			runErr = fmt.Errorf("serve: %w", err)
			break wait
		case err := <-loopDone:
			loopDone <- err
			runErr = fmt.Errorf("reconcile loop ended: %w", err)
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	log.Info().Msg("shutting down")
	stopReap()
	<-reapDone
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.Shutdown.DrainTimeout)
	if err := srv.Shutdown(drainCtx); err != nil {
		// Requests still running past the drain bound are cut off with
		// their instances below; that is the bound doing its job, not a
		// failure of the shutdown.
		log.Warn().Err(err).Dur("drain_timeout", cfg.Shutdown.DrainTimeout).Msg("requests still in flight at the drain bound")
	}
	cancelDrain()
	stopLoop()
	loopErr := <-loopDone
	if errors.Is(loopErr, context.Canceled) {
		loopErr = nil
	}
	stopCtx, cancelStop := context.WithTimeout(context.Background(), stopBudget(cfg.Defaults.StopTimeout, loop.List()))
	defer cancelStop()
	if err := mgr.Shutdown(stopCtx); err != nil {
		log.Warn().Err(err).Msg("some instances did not stop cleanly")
	}
	log.Info().Bool("keep_children", cfg.Shutdown.KeepChildren).Msg("llamactl stopped")
	return errors.Join(runErr, loopErr)
}

// stopBudget bounds the runtime's Shutdown: the longest stop timeout
// (SIGTERM to SIGKILL) of any instance, so that a spec's own stop_timeout
// above the default still ends in SIGKILL rather than in a child left
// running, plus a margin for the SIGKILL and the reaping.
func stopBudget(def time.Duration, insts []reconcile.InstanceStatus) time.Duration {
	longest := def
	for _, st := range insts {
		if st.Spec == nil || st.Spec.StopTimeout == nil {
			continue
		}
		longest = max(longest, time.Duration(*st.Spec.StopTimeout)*time.Second) // 0: SIGKILL at once
	}
	return longest + 5*time.Second
}
