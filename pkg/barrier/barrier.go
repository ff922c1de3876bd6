package barrier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/rest"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// Constants of the original FrameworkBarrier's contract.
const (
	// ComponentName names the barrier in logs and as a user agent.
	ComponentName = "frameworkbarrier"
	// FrameworkObjectFilePath is where the released Framework object is
	// written, as JSON, relative to the output directory.
	FrameworkObjectFilePath = "./framework.json"
	// InjectorFilePath is where the injector script is written, relative to
	// the output directory.
	InjectorFilePath = "./injector.sh"
	// HostfileFilePath is where the MPI hostfile is written when
	// InjectorOptions.Hostfile is set.
	HostfileFilePath = "./hostfile"

	// EnvNameBarrierCheckIntervalSec sets Config.BarrierCheckIntervalSec.
	EnvNameBarrierCheckIntervalSec = "BARRIER_CHECK_INTERVAL_SEC"
	// EnvNameBarrierCheckTimeoutSec sets Config.BarrierCheckTimeoutSec.
	EnvNameBarrierCheckTimeoutSec = "BARRIER_CHECK_TIMEOUT_SEC"
)

// FrameworkBarrier is the FrameworkController extension that gates a task's
// containers on its whole Framework: run it as an init container of every
// task pod. It waits until every task of the Framework has a pod IP, then
// writes the Framework to ./framework.json and an injector script to
// ./injector.sh that the app container sources:
//
//	FB_WORKER_PORT=2222 . ./injector.sh   # FB_WORKER_IPS, FB_WORKER_ADDRESSES, ...
//
// This gives gang execution without gang scheduling (no app container starts
// before every pod exists), makes a pod's app start only after the
// controller recorded the pod in the Framework's status, and gives each task
// its peers' addresses without cluster DNS.
type FrameworkBarrier struct {
	cfg  Config
	opts Options
	err  error // a configuration error kept by NewFrameworkBarrier
}

// Options are FrameworkBarrier's settings beyond Config.
type Options struct {
	// Dir is the directory framework.json, injector.sh and hostfile are
	// written to. Default "." (the working directory, as the original).
	Dir string
	// Injector selects the injector's optional variables and the hostfile.
	// NewFrameworkBarrier fills TaskRoleName and TaskIndex from
	// FC_TASKROLE_NAME and FC_TASK_INDEX.
	Injector InjectorOptions
	// RESTConfig, when set, is used instead of Config's kubeconfig settings.
	RESTConfig *rest.Config
	// Progress, when set, receives progress while waiting (see WithProgress).
	// Default: logged at info level through Logger.
	Progress func(Progress)
	// Logger receives progress and reconnection logs. Default: discard.
	Logger *slog.Logger
	// WaitOptions are passed to Wait after the ones above (for example
	// WithMetadataWatch).
	WaitOptions []Option
}

// New returns a FrameworkBarrier for cfg (defaulted, then validated).
func New(cfg Config, opts Options) (*FrameworkBarrier, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		log := opts.Logger
		opts.Progress = func(p Progress) { log.Info(p.String()) }
	}
	return &FrameworkBarrier{cfg: cfg, opts: opts}, nil
}

// NewFrameworkBarrier returns a FrameworkBarrier configured from the
// environment, with the original's signature. An invalid environment is not
// lost: RunContext returns it (and Run exits 210 with it). Prefer FromEnv,
// which returns the error at once.
func NewFrameworkBarrier() *FrameworkBarrier {
	b, err := FromEnv()
	if err != nil {
		return &FrameworkBarrier{err: err}
	}
	return b
}

// FromEnv returns a FrameworkBarrier configured from the environment, as the
// original: LoadConfig(os.LookupEnv) and the task's own role and index from
// FC_TASKROLE_NAME and FC_TASK_INDEX.
func FromEnv() (*FrameworkBarrier, error) {
	cfg, err := LoadConfig(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	opts := Options{}
	if opts.Injector.TaskRoleName, opts.Injector.TaskIndex, err = TaskFromEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	return New(cfg, opts)
}

// TaskFromEnv reads the task's own role and index from FC_TASKROLE_NAME and
// FC_TASK_INDEX. Both unset is no task; an index that is not a non-negative
// integer is an error matching ErrInvalidConfig.
func TaskFromEnv(lookup func(string) (string, bool)) (role string, index int, err error) {
	role, _ = lookup(EnvNameTaskRoleName)
	s, _ := lookup(EnvNameTaskIndex)
	if role == "" {
		return "", 0, nil
	}
	index, err = strconv.Atoi(s)
	if err != nil || index < 0 {
		return "", 0, &ConfigError{Problems: []string{fmt.Sprintf("%s=%q is not a task index (a non-negative integer)", EnvNameTaskIndex, s)}}
	}
	return role, index, nil
}

// Config returns the barrier's configuration, with defaults applied.
func (b *FrameworkBarrier) Config() Config { return b.cfg }

// Run is the original's entry point for a barrier's main: it waits with no
// deadline but the configured timeout, writes the outputs and returns on
// success; on failure it prints one line to stderr and exits the process
// with ExitCode (201 to retry, 210 permanent, 1 otherwise), the contract
// FrameworkController relies on. Library callers use RunContext.
func (b *FrameworkBarrier) Run() {
	if err := b.RunContext(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ComponentName, err)
		os.Exit(ExitCode(err))
	}
}

// Exit codes of Run and podkit barrier, as FrameworkController's barrier.
const (
	// ExitCodeTimeout (transient conflict) asks the controller to back off
	// and retry: the gang did not form before the timeout.
	ExitCodeTimeout = 201
	// ExitCodePermanent: the configuration is invalid, or the Framework does
	// not exist (or was deleted, or completed); retrying cannot help.
	ExitCodePermanent = 210
	// ExitCodeUnknown is any other failure, such as an unusable kubeconfig.
	ExitCodeUnknown = 1
)

// ExitCode maps an error of this package to the original's exit code: 0 for
// nil, ExitCodeTimeout, ExitCodePermanent or ExitCodeUnknown.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrTimeout):
		return ExitCodeTimeout
	case errors.Is(err, ErrInvalidConfig), errors.Is(err, ErrFrameworkNotFound), errors.Is(err, ErrFrameworkCompleted):
		return ExitCodePermanent
	default:
		return ExitCodeUnknown
	}
}

// RunContext waits for the Framework (see Wait) and writes the outputs (see
// WriteOutputs). It returns Wait's typed errors; ExitCode maps them to the
// original's exit codes.
func (b *FrameworkBarrier) RunContext(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	opts := []Option{WithProgress(b.opts.Progress), WithLogger(b.opts.Logger)}
	if b.opts.RESTConfig != nil {
		opts = append(opts, WithRESTConfig(b.opts.RESTConfig))
	}
	opts = append(opts, b.opts.WaitOptions...)
	r, err := WaitRelease(ctx, b.cfg, opts...)
	if err != nil {
		return err
	}
	return WriteReleaseOutputs(b.opts.Dir, r, b.opts.Injector)
}

// WriteOutputs writes framework.json (0644), the hostfile when requested
// (0644) and, last, injector.sh (0755) into dir, each atomically (temporary
// file and rename): a reader never sees a partial file, and injector.sh
// exists only once everything else does.
func WriteOutputs(dir string, f *v1alpha1.Framework, opts InjectorOptions) error {
	peers, err := PeersOf(f)
	if err != nil {
		return err
	}
	return WriteReleaseOutputs(dir, &Release{Peers: peers, namespace: f.Namespace, name: f.Name, framework: f}, opts)
}

// WriteReleaseOutputs is WriteOutputs for a Release: the addresses are the
// ones WaitRelease read, and a Framework WaitRelease read as JSON is not
// decoded whole (framework.json is then compact, as FrameworkController's
// barrier writes it).
func WriteReleaseOutputs(dir string, r *Release, opts InjectorOptions) error {
	for _, role := range r.Peers {
		for i, ip := range role.IPs {
			if ip == "" {
				return fmt.Errorf("task %s-%d of framework %s/%s has no pod IP yet", role.Name, i, r.namespace, r.name)
			}
		}
	}
	data, err := r.frameworkFile(opts.PodTemplates)
	if err != nil {
		return err
	}
	if opts.Hostfile {
		abs, err := filepath.Abs(filepath.Join(dir, HostfileFilePath))
		if err != nil {
			return fmt.Errorf("resolve hostfile path: %w", err)
		}
		opts.HostfilePath = abs
	}
	script, err := RenderInjector(r.Peers, opts)
	if err != nil {
		return fmt.Errorf("render injector for framework %s/%s: %w", r.namespace, r.name, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, FrameworkObjectFilePath), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if opts.Hostfile {
		hf, err := RenderHostfile(r.Peers, opts)
		if err != nil {
			return fmt.Errorf("render hostfile for framework %s/%s: %w", r.namespace, r.name, err)
		}
		if err := writeFileAtomic(opts.HostfilePath, hf, 0o644); err != nil {
			return err
		}
	}
	return writeFileAtomic(filepath.Join(dir, InjectorFilePath), script, 0o755)
}
