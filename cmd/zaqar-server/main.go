// Command zaqar-server runs one node of the replicated Zaqar-compatible
// messaging service. With no arguments it runs a single-node cluster in
// ./data with the REST API on 127.0.0.1:8888.
//
//	zaqar-server [flags]                 run a node
//	zaqar-server local-cluster [flags]   run a local N-node cluster (default 3)
//	zaqar-server recover [flags]         give a stopped node a new set of voters after quorum loss
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
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	cfg.Logger.Info("shutting down", "signal", s.String())
	if err := srv.Close(); err != nil {
		cfg.Logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
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
