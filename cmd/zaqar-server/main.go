// Command zaqar-server runs one node of the replicated Zaqar-compatible
// messaging service. With no arguments it runs a single-node cluster in
// ./data with the REST API on 127.0.0.1:8888.
//
//	zaqar-server [flags]                 run a node
//	zaqar-server local-cluster [flags]   run a local N-node cluster (default 3)
//	zaqar-server recover [flags]         give a stopped node a new set of voters after quorum loss
//	zaqar-server certs [flags]           write a throwaway CA and node certificates for TLS
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/zaqar-raft/zaqar/server"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "local-cluster":
			os.Exit(runLocalCluster(os.Args[2:]))
		case "recover":
			os.Exit(runRecover(os.Args[2:]))
		case "certs":
			os.Exit(runCerts(os.Args[2:]))
		}
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseOptions(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-server:", err)
		return 2
	}
	cfg, err := o.serverConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-server:", err)
		return 2
	}
	cfg.Logger = newLogger(o.logLevel, o.logFormat)
	if os.Getenv("GOGC") == "" && o.gcPercent != 0 {
		debug.SetGCPercent(o.gcPercent)
	}
	srv, err := server.Start(cfg)
	if err != nil {
		cfg.Logger.Error("start failed", "err", err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := 0
	for done := false; !done; {
		select {
		case <-hup:
			if err := srv.ReloadTLS(); err != nil {
				cfg.Logger.Error("SIGHUP: TLS files could not be reloaded; the previous certificates stay in use", "err", err)
			}
		case s := <-stop:
			cfg.Logger.Info("shutting down", "signal", s.String())
			done = true
		case err := <-srv.Fatal():
			cfg.Logger.Error("stopping: this node cannot run as configured", "err", err)
			code, done = 1, true
		}
	}
	if err := srv.Close(); err != nil {
		cfg.Logger.Error("shutdown", "err", err)
		return 1
	}
	return code
}

func newLogger(level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
