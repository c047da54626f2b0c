// Command scaleset-client drives GitHub's own scale-set client (github.com/actions/scaleset and its
// listener package) against Gantry's fake Actions service, so the fake is checked by a client nobody
// here wrote. It bootstraps like a real autoscaler (App or PAT → registration → admin token), finds or
// creates a scale set, opens a message session and runs the library's listener with a minimal Scaler
// that asks for one JIT runner per assigned job. It stops after -job-events JobStarted/JobCompleted
// events or at -timeout.
//
// Reaching a loopback fake needs no TLS and no patching: the library treats every config-URL host but
// github.com (and *.ghe.com) as GHES and derives the REST base by keeping scheme and host and adding
// /api/v3, so -url=http://127.0.0.1:PORT/org makes it call http://127.0.0.1:PORT/api/v3/...; the
// Actions service and message-queue URLs are whatever the fake hands out.
//
// Every step is one JSON object per line on stdout ({"event": ..., ...}); the library's own log goes
// to stderr. Exit status: 0 done, 1 error, 3 timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/actions/scaleset"
	"github.com/actions/scaleset/listener"
)

type config struct {
	url            string
	clientID       string
	installationID int64
	privateKeyFile string
	token          string
	name           string
	labels         string
	owner          string
	runnerGroup    string
	maxRunners     int
	jobEvents      int
	timeout        time.Duration
	deleteAtExit   bool
}

// out writes the event lines; the Scaler runs on the listener's goroutine, but keep writes whole anyway.
var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

func emit(event string, fields map[string]any) {
	line := map[string]any{"event": event}
	for k, v := range fields {
		line[k] = v
	}
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(line)
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "", "GitHub config URL (org, repo or enterprise)")
	flag.StringVar(&c.clientID, "app-client-id", "", "GitHub App client id (or app id)")
	flag.Int64Var(&c.installationID, "app-installation-id", 0, "GitHub App installation id")
	flag.StringVar(&c.privateKeyFile, "app-private-key-file", "", "PEM file of the App's private key")
	flag.StringVar(&c.token, "token", "", "personal access token instead of an App")
	flag.StringVar(&c.name, "name", "gantry-contract", "scale set name")
	flag.StringVar(&c.labels, "labels", "", "comma-separated extra labels")
	flag.StringVar(&c.owner, "owner", "gantry-contract-listener", "session owner name")
	flag.StringVar(&c.runnerGroup, "runner-group", "Default", "runner group name")
	flag.IntVar(&c.maxRunners, "max-runners", 5, "X-ScaleSetMaxCapacity and the JIT runner cap")
	flag.IntVar(&c.jobEvents, "job-events", 2, "stop after this many JobStarted+JobCompleted events")
	flag.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up after this long")
	flag.BoolVar(&c.deleteAtExit, "delete-scale-set", true, "delete the scale set before exiting")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	err := run(ctx, c)
	switch {
	case err == nil:
		emit("done", nil)
	case errors.Is(err, context.DeadlineExceeded):
		emit("timeout", map[string]any{"error": err.Error()})
		os.Exit(3)
	default:
		emit("error", map[string]any{"error": err.Error()})
		os.Exit(1)
	}
}

func newClient(c config) (*scaleset.Client, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Retries stay on (injected 5xx must be survived), but short, so a test does not wait 30 s.
	options := []scaleset.HTTPOption{
		scaleset.WithLogger(logger),
		scaleset.WithRetryMax(4),
		scaleset.WithRetryWaitMax(2 * time.Second),
	}
	info := scaleset.SystemInfo{System: "gantry-contract", Version: "test", Subsystem: "listener"}
	if c.token != "" {
		return scaleset.NewClientWithPersonalAccessToken(scaleset.NewClientWithPersonalAccessTokenConfig{
			GitHubConfigURL:     c.url,
			PersonalAccessToken: c.token,
			SystemInfo:          info,
		}, options...)
	}
	key, err := os.ReadFile(c.privateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the App key: %w", err)
	}
	return scaleset.NewClientWithGitHubApp(scaleset.ClientWithGitHubAppConfig{
		GitHubConfigURL: c.url,
		GitHubAppAuth: scaleset.GitHubAppAuth{
			ClientID:       c.clientID,
			InstallationID: c.installationID,
			PrivateKey:     string(key),
		},
		SystemInfo: info,
	}, options...)
}

func run(ctx context.Context, c config) error {
	client, err := newClient(c)
	if err != nil {
		return err
	}

	group, err := client.GetRunnerGroupByName(ctx, c.runnerGroup)
	if err != nil {
		return fmt.Errorf("runner group: %w", err)
	}
	emit("runner_group", map[string]any{"id": group.ID, "name": group.Name, "isDefault": group.IsDefault})

	set, err := client.GetRunnerScaleSet(ctx, group.ID, c.name)
	if err != nil {
		return fmt.Errorf("get scale set: %w", err)
	}
	if set == nil {
		labels := []scaleset.Label{{Name: c.name}}
		for _, l := range strings.Split(c.labels, ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, scaleset.Label{Name: l})
			}
		}
		set, err = client.CreateRunnerScaleSet(ctx, &scaleset.RunnerScaleSet{
			Name:          c.name,
			RunnerGroupID: group.ID,
			Labels:        labels,
			RunnerSetting: scaleset.RunnerSetting{DisableUpdate: true},
		})
		if err != nil {
			return fmt.Errorf("create scale set: %w", err)
		}
		emit("scale_set_created", map[string]any{"id": set.ID, "name": set.Name})
	} else {
		emit("scale_set_found", map[string]any{"id": set.ID, "name": set.Name})
	}

	set, err = client.GetRunnerScaleSetByID(ctx, set.ID)
	if err != nil {
		return fmt.Errorf("get scale set by id: %w", err)
	}
	emit("scale_set", map[string]any{
		"id": set.ID, "name": set.Name, "runnerGroupId": set.RunnerGroupID, "labels": set.Labels,
		"disableUpdate": set.RunnerSetting.DisableUpdate, "statistics": set.Statistics,
	})

	// An update the way a controller applies a changed spec: the whole object, one label more.
	update := *set
	update.Labels = append(append([]scaleset.Label{}, set.Labels...), scaleset.Label{Name: "contract-updated"})
	updated, err := client.UpdateRunnerScaleSet(ctx, set.ID, &update)
	if err != nil {
		return fmt.Errorf("update scale set: %w", err)
	}
	emit("scale_set_updated", map[string]any{"id": updated.ID, "labels": updated.Labels})

	if c.deleteAtExit {
		defer func() {
			err := client.DeleteRunnerScaleSet(context.WithoutCancel(ctx), set.ID)
			emit("scale_set_deleted", map[string]any{"id": set.ID, "error": errorText(err)})
		}()
	}

	session, err := client.MessageSessionClient(ctx, set.ID, c.owner)
	if err != nil {
		return fmt.Errorf("message session: %w", err)
	}
	s := session.Session()
	emit("session", map[string]any{
		"sessionId": s.SessionID.String(), "ownerName": s.OwnerName, "statistics": s.Statistics,
	})
	defer func() {
		err := session.Close(context.WithoutCancel(ctx))
		emit("session_closed", map[string]any{"error": errorText(err)})
	}()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	scaler := &jitScaler{
		client: client, scaleSetID: set.ID, prefix: set.Name + "-runner", maxRunners: c.maxRunners,
		runners: map[string]int{}, stopAfter: c.jobEvents, stop: stop,
	}
	l, err := listener.New(session, listener.Config{ScaleSetID: set.ID, MaxRunners: c.maxRunners},
		listener.WithMetricsRecorder(statisticsLog{}))
	if err != nil {
		return err
	}
	err = l.Run(runCtx, scaler)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// jitScaler keeps one JIT runner per assigned job, up to maxRunners, and logs what the listener hands it.
type jitScaler struct {
	client     *scaleset.Client
	scaleSetID int
	prefix     string
	maxRunners int
	created    int
	runners    map[string]int // name → runner id, until its job completes
	jobEvents  int
	stopAfter  int
	stop       context.CancelFunc
}

func (s *jitScaler) HandleDesiredRunnerCount(ctx context.Context, assigned int) (int, error) {
	desired := min(assigned, s.maxRunners)
	emit("desired", map[string]any{"assigned": assigned, "desired": desired, "runners": len(s.runners)})
	for len(s.runners) < desired {
		s.created++
		name := fmt.Sprintf("%s-%d", s.prefix, s.created)
		jit, err := s.client.GenerateJitRunnerConfig(ctx, &scaleset.RunnerScaleSetJitRunnerSetting{Name: name}, s.scaleSetID)
		if err != nil {
			return 0, fmt.Errorf("JIT config for %s: %w", name, err)
		}
		s.runners[jit.Runner.Name] = jit.Runner.ID
		emit("jit", map[string]any{
			"runnerId": jit.Runner.ID, "runnerName": jit.Runner.Name, "scaleSetId": jit.Runner.RunnerScaleSetID,
			"encodedJitConfigLength": len(jit.EncodedJITConfig),
		})
	}
	return desired, nil
}

func (s *jitScaler) HandleJobStarted(ctx context.Context, job *scaleset.JobStarted) error {
	emit("job_started", jobFields(&job.JobMessageBase, map[string]any{
		"runnerId": job.RunnerID, "runnerName": job.RunnerName,
	}))
	// The service must refuse to remove a runner that runs a job, in the shape the library maps.
	err := s.client.RemoveRunner(ctx, int64(job.RunnerID))
	emit("remove_busy_runner", map[string]any{
		"runnerId": job.RunnerID, "jobStillRunning": errors.Is(err, scaleset.JobStillRunningError), "error": errorText(err),
	})
	s.count()
	return nil
}

func (s *jitScaler) HandleJobCompleted(ctx context.Context, job *scaleset.JobCompleted) error {
	emit("job_completed", jobFields(&job.JobMessageBase, map[string]any{
		"runnerId": job.RunnerID, "runnerName": job.RunnerName, "result": job.Result,
	}))
	if job.RunnerName != "" {
		delete(s.runners, job.RunnerName)
		// GitHub removes a JIT runner after its one job; the library maps that answer to RunnerNotFoundError.
		_, err := s.client.GetRunner(ctx, job.RunnerID)
		emit("runner_after_job", map[string]any{
			"runnerId": job.RunnerID, "notFound": errors.Is(err, scaleset.RunnerNotFoundError), "error": errorText(err),
		})
	}
	s.count()
	return nil
}

func (s *jitScaler) count() {
	s.jobEvents++
	if s.jobEvents >= s.stopAfter {
		s.stop()
	}
}

func jobFields(job *scaleset.JobMessageBase, extra map[string]any) map[string]any {
	fields := map[string]any{
		"runnerRequestId": job.RunnerRequestID, "jobId": job.JobID, "repositoryName": job.RepositoryName,
		"ownerName": job.OwnerName, "workflowRunId": job.WorkflowRunID, "jobWorkflowRef": job.JobWorkflowRef,
		"eventName": job.EventName, "requestLabels": job.RequestLabels, "queueTime": job.QueueTime,
		"scaleSetAssignTime": job.ScaleSetAssignTime, "runnerAssignTime": job.RunnerAssignTime,
		"finishTime": job.FinishTime,
	}
	for k, v := range extra {
		fields[k] = v
	}
	return fields
}

// statisticsLog records what the listener saw on every message (the library's MetricsRecorder hook).
type statisticsLog struct{}

func (statisticsLog) RecordStatistics(stats *scaleset.RunnerScaleSetStatistic) {
	emit("statistics", map[string]any{"statistics": stats})
}
func (statisticsLog) RecordJobStarted(*scaleset.JobStarted)     {}
func (statisticsLog) RecordJobCompleted(*scaleset.JobCompleted) {}
func (statisticsLog) RecordDesiredRunners(int)                  {}

func errorText(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}
