package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/devcluster"
)

// DefaultNamespace is where the demo puts its Frameworks and pods when -n
// is not given.
const DefaultNamespace = "podkit-demo"

// CodeInterrupted is the exit code of a demo stopped by Ctrl-C (128+SIGINT).
const CodeInterrupted = 130

type flags struct {
	name      string
	nodes     int
	workdir   string
	configDir string
	outputDir string
	timeout   time.Duration
}

// NewCommand returns the `podkit demo` command.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show every podkit capability working on a local or given cluster",
		Long: `Show podkit end to end: start (or reuse) the local dev cluster, install the
Framework CRD and RBAC, run the Framework controller in-process, apply the
samples from config/samples and follow them to Completed, run the gang
barrier for one task and print the injector it writes, fork a child pod,
and print a summary. With --kubeconfig it uses that cluster instead.

kwok nodes run no containers: on a kwok cluster the demo completes task
pods itself by annotating them with podkit.dev/test-exit-code=0 and says
so. Ctrl-C stops the demo and leaves the cluster up.`,
		Example: `  # the local dev cluster (what make run does)
  podkit demo

  # another cluster, in namespace demo
  podkit demo --kubeconfig ~/.kube/config -n demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runE(cmd.Context(), c, f)
		},
	}
	cmd.SetContext(ctx)
	fs := cmd.Flags()
	fs.StringVar(&f.name, "name", devcluster.DefaultName, "dev cluster to start or reuse (ignored with --kubeconfig)")
	fs.IntVar(&f.nodes, "nodes", 2, "kwok nodes of a newly created dev cluster")
	fs.StringVar(&f.workdir, "workdir", "", "dev clusters' work directory (default <podkit cache>/kwok)")
	fs.StringVar(&f.configDir, "config-dir", "", "podkit's config directory with crd/, rbac/ and samples/ (default: ./config of the podkit checkout)")
	fs.StringVar(&f.outputDir, "output-dir", "", "where the barrier writes injector.sh and framework.json (default: a new temporary directory)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long each step may wait for the cluster")
	return cmd
}

func (f *flags) validate() error {
	switch {
	case f.nodes < 1:
		return clierr.Usagef("--nodes %d: use at least 1", f.nodes)
	case f.timeout <= 0:
		return clierr.Usagef("--timeout %s: use a positive duration such as 2m", f.timeout)
	}
	return nil
}

// status is how a step ended.
type status string

const (
	statusOK      status = "ok"
	statusSkipped status = "skipped"
	statusFailed  status = "failed"
)

// result is one row of the summary.
type result struct {
	step     string
	status   status
	detail   string
	duration time.Duration
}

// skipError marks a step that did not run, with the reason.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

func skip(format string, args ...any) error { return &skipError{reason: fmt.Sprintf(format, args...)} }

// demo is one run of the demo.
type demo struct {
	c   *common.Common
	f   *flags
	out io.Writer

	ns         string
	cfg        *rest.Config
	cs         kubernetes.Interface
	cl         client.WithWatch
	user       string
	devCluster bool
	kubeconfig string
	configDir  string
	kwok       bool

	crdInstalled bool
	rbacApplied  bool
	controllerUp bool
	samples      []string
	barrierDone  chan barrierOutcome

	results []result
}

func runE(ctx context.Context, c *common.Common, f *flags) error {
	if err := f.validate(); err != nil {
		return err
	}
	d := &demo{c: c, f: f, out: c.Streams.Out, ns: DefaultNamespace}
	if c.Flags.Namespace != nil && *c.Flags.Namespace != "" {
		d.ns = *c.Flags.Namespace
	}
	return d.run(ctx)
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

func (d *demo) run(ctx context.Context) error {
	start := time.Now()
	d.printf("podkit demo: every capability on a real control plane\n\n")

	// Without a cluster nothing else can run: these failures end the demo.
	if err := d.step(ctx, "cluster", d.connect); err != nil {
		return d.abort(ctx, err)
	}
	if err := d.preflight(ctx); err != nil {
		return d.abort(ctx, err)
	}
	if err := d.step(ctx, "namespace", d.prepareNamespace); err != nil {
		return d.abort(ctx, err)
	}

	stopController := func() {}
	steps := []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"install CRD", d.installCRD},
		{"install RBAC", d.installRBAC},
		{"controller", func(ctx context.Context) (string, error) {
			detail, stop, err := d.startController(ctx)
			stopController = stop
			return detail, err
		}},
		{"apply samples", d.applySamples},
		{"tasks running", d.waitRunning},
		{"barrier", d.runBarrier},
		{"complete samples", d.completeSamples},
		{"fork", d.fork},
	}
	var err error
	for _, s := range steps {
		if err = d.step(ctx, s.name, s.fn); err != nil {
			break
		}
	}
	stopController()
	if err != nil {
		return d.abort(ctx, err)
	}
	d.summary(time.Since(start))
	for _, r := range d.results {
		if r.status == statusFailed {
			return clierr.WithCode(clierr.CodeFailure, fmt.Errorf("demo step %q failed: %s", r.step, r.detail))
		}
	}
	return nil
}

// step runs fn, prints and records its outcome. It returns an error only
// when the demo must stop: the context ended, or a step the rest needs
// (cluster, namespace) failed.
func (d *demo) step(ctx context.Context, name string, fn func(context.Context) (string, error)) error {
	d.printf("==> %s\n", name)
	t0 := time.Now()
	detail, err := fn(ctx)
	r := result{step: name, status: statusOK, detail: detail, duration: time.Since(t0)}
	var sk *skipError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &sk):
		r.status, r.detail = statusSkipped, sk.reason
		d.printf("    skipped: %s\n", sk.reason)
	case err != nil:
		r.status, r.detail = statusFailed, err.Error()
		d.printf("    FAILED: %v\n", err)
	default:
		d.printf("    %s\n", detail)
	}
	d.results = append(d.results, r)
	if err != nil && sk == nil && (name == "cluster" || name == "namespace") {
		return err
	}
	return nil
}

// abort ends the demo early: on Ctrl-C with what ran so far and how to
// take the cluster down; otherwise with the error alone (one line).
func (d *demo) abort(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	d.printf("\ninterrupted; the cluster is still up.\n")
	if len(d.results) > 0 {
		d.summary(0)
	} else {
		d.cleanupHint()
	}
	return clierr.WithCode(CodeInterrupted, errors.New("demo interrupted"))
}

// summary prints the table of steps and how to clean up.
func (d *demo) summary(total time.Duration) {
	d.printf("\nSummary\n")
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tRESULT\tDURATION\tDETAIL")
	for _, r := range d.results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.step, r.status, r.duration.Round(10*time.Millisecond), oneLine(r.detail, 100))
	}
	if total > 0 {
		fmt.Fprintf(tw, "total\t\t%s\t\n", total.Round(10*time.Millisecond))
	}
	_ = tw.Flush()
	d.cleanupHint()
}

func (d *demo) cleanupHint() {
	var b strings.Builder
	b.WriteString("\nThe cluster stays up. Look around and clean up:\n")
	if d.devCluster {
		fmt.Fprintf(&b, "  export KUBECONFIG=%s\n", d.kubeconfig)
	}
	fmt.Fprintf(&b, "  podkit get fw -n %s\n", d.ns)
	fmt.Fprintf(&b, "  kubectl delete namespace %s   # the demo's Frameworks and pods\n", d.ns)
	if d.devCluster {
		fmt.Fprintf(&b, "  podkit dev down --name %s   # the whole dev cluster\n", d.f.name)
	}
	d.printf("%s", b.String())
}
