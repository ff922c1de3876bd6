package barrier

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	fb "github.com/podkit-dev/podkit/pkg/barrier"
)

// Exit codes of the original FrameworkBarrier's contract (FrameworkController
// completion codes for a failed container).
const (
	// CodeTimeout (transient conflict) asks the controller to back off and
	// retry: the gang did not form before the timeout.
	CodeTimeout = fb.ExitCodeTimeout
	// CodePermanent: the configuration is invalid, or the Framework does not
	// exist (or was deleted, or completed) — retrying cannot help.
	CodePermanent = fb.ExitCodePermanent
)

// flags are the command's own flags; each defaults to its environment
// variable, as the original reads it.
type flags struct {
	intervalSec     int64
	timeoutSec      int64
	dir             string
	taskRole        string
	taskIndex       int
	torch           bool
	torchMasterRole string
	torchMasterPort int
	hostfile        bool
	hostfileSlots   int
	podTemplates    bool
}

// NewCommand returns `podkit barrier`.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "barrier [FRAMEWORK]",
		Short: "Wait until every task of a Framework has a pod IP, then write framework.json and injector.sh",
		Long: `Run as the init container of every task pod of a Framework. It watches the Framework
until every task (counted against each role's taskNumber) has a pod IP, then writes
framework.json and injector.sh (FB_{ROLE}_IPS, FB_{ROLE}_ADDRESSES, FB_{ROLE}_COUNT,
FB_ROLE, FB_INDEX) into --dir; the app container sources it:

    FB_WORKER_PORT=2222 . ./injector.sh

Configuration comes from the environment the Framework controller sets
(FC_FRAMEWORK_NAMESPACE, FC_FRAMEWORK_NAME, FC_TASKROLE_NAME, FC_TASK_INDEX,
BARRIER_CHECK_INTERVAL_SEC, BARRIER_CHECK_TIMEOUT_SEC, KUBECONFIG,
KUBE_APISERVER_ADDRESS); -n, the other flags and the argument override it.
Without a kubeconfig it uses the pod's in-cluster config; the pod's service
account needs config/rbac/barrier_role.yaml (get, list, watch on frameworks).

Exit codes: 0 released; 201 timed out (transient: back off and retry);
210 invalid configuration, or the Framework does not exist, was deleted or
completed (permanent); 1 any other error, such as an unusable kubeconfig.`,
		Example: `  # Outside a pod, against a dev cluster:
  podkit barrier my-framework -n default --task-role worker --task-index 0 --dir /tmp/fb

  # In a task pod, with /fb an emptyDir shared by both containers:
  podkit barrier --dir /fb --torch           # init container (the controller sets FC_*)
  FB_WORKER_PORT=2222 . /fb/injector.sh      # app container, before starting the app`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runE(cmd.Context(), cmd, c, f, args)
		},
	}
	fs := cmd.Flags()
	fs.Int64Var(&f.intervalSec, "check-interval-sec", 0, "progress and reconnect interval in seconds, at least 5 (default $BARRIER_CHECK_INTERVAL_SEC or 10)")
	fs.Int64Var(&f.timeoutSec, "check-timeout-sec", 0, "give up after this many seconds, 60 to 1200 (default $BARRIER_CHECK_TIMEOUT_SEC or 600)")
	fs.StringVar(&f.dir, "dir", ".", "directory to write framework.json, injector.sh and hostfile to")
	fs.StringVar(&f.taskRole, "task-role", "", "this task's role, for FB_ROLE, FB_INDEX and RANK (default $FC_TASKROLE_NAME)")
	fs.IntVar(&f.taskIndex, "task-index", 0, "this task's index in its role (default $FC_TASK_INDEX)")
	fs.BoolVar(&f.torch, "torch", false, "also export MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK for torch.distributed")
	fs.StringVar(&f.torchMasterRole, "torch-master-role", "", "role whose task 0 is MASTER_ADDR and ranks first (default: the first role)")
	fs.IntVar(&f.torchMasterPort, "torch-master-port", fb.DefaultTorchMasterPort, "MASTER_PORT")
	fs.BoolVar(&f.hostfile, "hostfile", false, "also write an MPI hostfile (one 'IP slots=N' line per task, in RANK order) and export FB_HOSTFILE")
	fs.IntVar(&f.hostfileSlots, "hostfile-slots", 1, "slots per host in the hostfile")
	fs.BoolVar(&f.podTemplates, "pod-templates", false, "keep the task roles' pod templates in framework.json (left out by default: they may name secrets; FrameworkController's barrier keeps them)")
	return cmd
}

func runE(ctx context.Context, cmd *cobra.Command, c *common.Common, f *flags, args []string) error {
	cfg, err := fb.ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return exitError(err)
	}
	changed := cmd.Flags().Changed
	if len(args) == 1 {
		cfg.FrameworkName = args[0]
	}
	if c.Flags.Namespace != nil && *c.Flags.Namespace != "" {
		cfg.FrameworkNamespace = *c.Flags.Namespace
	}
	if cfg.FrameworkNamespace == "" {
		if ns, err := c.Namespace(); err == nil {
			cfg.FrameworkNamespace = ns
		}
	}
	if changed("check-interval-sec") {
		cfg.BarrierCheckIntervalSec = f.intervalSec
	}
	if changed("check-timeout-sec") {
		cfg.BarrierCheckTimeoutSec = f.timeoutSec
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return exitError(flagNames(err, changed))
	}

	inj := fb.InjectorOptions{
		Torch: f.torch, TorchMasterRole: f.torchMasterRole, TorchMasterPort: f.torchMasterPort,
		Hostfile: f.hostfile, HostfileSlots: f.hostfileSlots, PodTemplates: f.podTemplates,
	}
	if inj.TaskRoleName, inj.TaskIndex, err = fb.TaskFromEnv(os.LookupEnv); err != nil && !changed("task-index") {
		return exitError(err)
	}
	if changed("task-role") {
		inj.TaskRoleName = f.taskRole
	}
	if changed("task-index") {
		if f.taskIndex < 0 {
			return clierr.Usagef("--task-index %d: use a non-negative task index", f.taskIndex)
		}
		inj.TaskIndex = f.taskIndex
	}

	// Client configuration: kubectl's flags (--kubeconfig, KUBECONFIG,
	// in-cluster), with KUBE_APISERVER_ADDRESS as --server, as the original.
	if addr := cfg.KubeApiServerAddress; addr != "" && c.Flags.APIServer != nil && *c.Flags.APIServer == "" {
		*c.Flags.APIServer = addr
	}
	rc, err := c.RESTConfig()
	if err != nil {
		return err
	}

	out := c.Streams.ErrOut
	b, err := fb.New(cfg, fb.Options{
		Dir: f.dir, Injector: inj, RESTConfig: rc, Logger: c.Logger,
		Progress: func(p fb.Progress) {
			fmt.Fprintf(out, "barrier: framework %s/%s: %s\n", cfg.FrameworkNamespace, cfg.FrameworkName, p)
		},
	})
	if err != nil {
		return exitError(err)
	}
	if err := b.RunContext(ctx); err != nil {
		return exitError(err)
	}
	fmt.Fprintf(c.Streams.Out, "barrier released: wrote %s and %s in %s\n", fb.FrameworkObjectFilePath, fb.InjectorFilePath, f.dir)
	return nil
}

// ExitCode maps an error of pkg/barrier to the original's exit code.
func ExitCode(err error) int { return fb.ExitCode(err) }

func exitError(err error) error { return clierr.WithCode(ExitCode(err), err) }

// flagNames rewrites config problems about values that came from flags to
// name the flag instead of the environment variable.
func flagNames(err error, changed func(string) bool) error {
	var ce *fb.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	renames := map[string]string{}
	if changed("check-interval-sec") {
		renames[fb.EnvNameBarrierCheckIntervalSec+"="] = "--check-interval-sec="
	}
	if changed("check-timeout-sec") {
		renames[fb.EnvNameBarrierCheckTimeoutSec+"="] = "--check-timeout-sec="
	}
	out := &fb.ConfigError{}
	for _, p := range ce.Problems {
		for from, to := range renames {
			p = strings.Replace(p, from, to, 1)
		}
		if strings.HasPrefix(p, fb.EnvNameFrameworkName+" is not set") {
			p += " or pass it as the argument"
		}
		out.Problems = append(out.Problems, p)
	}
	return out
}
