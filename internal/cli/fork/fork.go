package fork

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/pkg/fork"
)

type flags struct {
	path           string
	wait           bool
	timeout        time.Duration
	output         string
	instance       string
	serviceAccount string
	env            []string
	labels         []string
	annotations    []string
	delete         bool
	logLines       int
	keepSidecars   bool
	dropContainers []string
}

// NewCommand returns the `podkit fork` command.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "fork --path NAME",
		Short: "Fork the current pod as a child pod that runs code path NAME",
		Long: `Fork the pod this command runs in: create a child pod from the pod's own spec
(made safe to create: no node, probes, ephemeral containers, token volumes or
hostPorts, restartPolicy Never, sidecars injected by Istio, Linkerd or Vault
and native sidecars left out unless --keep-sidecars) with PODKIT_FORK_PATH=NAME in its app containers. The
program in the image chooses what to run with fork.Path().

The pod must expose its name and namespace through the downward API
(PODKIT_POD_NAME, PODKIT_POD_NAMESPACE) and its service account needs the Role
in config/rbac/fork_role.yaml. Running the same command again adopts the
existing child instead of creating another one.

With --wait, podkit waits for the child to complete, prints its result and
exits with the child's exit code.`,
		Example: `  # inside a pod: fork, wait at most 10 minutes, print the result as JSON
  podkit fork --path migrate --wait --timeout 10m -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runE(cmd.Context(), c, f)
		},
	}
	cmd.SetContext(ctx)
	fs := cmd.Flags()
	fs.StringVar(&f.path, "path", "", "name of the code path the child takes (required; a label value)")
	fs.BoolVar(&f.wait, "wait", false, "wait for the child to complete and exit with its exit code")
	fs.DurationVar(&f.timeout, "timeout", 0, "with --wait, give up after this long (0: no limit)")
	fs.StringVarP(&f.output, "output", "o", "", "output format: json (default: text)")
	fs.StringVar(&f.instance, "instance", "", "tells apart several children of the same path")
	fs.StringVar(&f.serviceAccount, "service-account", "", "service account of the child (default: the pod's)")
	fs.StringArrayVar(&f.env, "env", nil, "KEY=VALUE set in the child's app containers (repeatable)")
	fs.StringArrayVar(&f.labels, "label", nil, "KEY=VALUE label of the child (repeatable)")
	fs.StringArrayVar(&f.annotations, "annotation", nil, "KEY=VALUE annotation of the child (repeatable)")
	fs.BoolVar(&f.delete, "delete", false, "with --wait, delete the child once it has completed")
	fs.IntVar(&f.logLines, "log-lines", fork.DefaultLogLines, "with --wait, last log lines to show per container")
	fs.BoolVar(&f.keepSidecars, "keep-sidecars", false, "keep the sidecars webhooks injected into the pod, and native sidecars, in the child")
	fs.StringArrayVar(&f.dropContainers, "drop-container", nil, "NAME of a further container to leave out of the child (repeatable)")
	return cmd
}

func runE(ctx context.Context, c *common.Common, f *flags) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	cl, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}
	opts.Clientset = cs
	opts.Logger = c.Logger
	opts.Progress = func(p fork.Progress) {
		c.Logger.Info("child", "namespace", p.Pod.Namespace, "name", p.Pod.Name, "state", p.Summary)
	}

	child, err := fork.Start(ctx, cl, f.path, opts)
	if err != nil {
		return err
	}
	if !f.wait {
		return f.print(c.Streams.Out, child.Result())
	}
	res, err := child.Wait(ctx)
	if res != nil {
		if perr := f.print(c.Streams.Out, res); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return err
	}
	if code := res.ExitCode(); code != 0 {
		return clierr.WithCode(code, fmt.Errorf("child pod %s/%s %s with exit code %d", res.Namespace, res.Name, strings.ToLower(string(res.Phase)), code))
	}
	return nil
}

// options validates the flags and turns them into fork.Options.
func (f *flags) options() (fork.Options, error) {
	if f.path == "" {
		return fork.Options{}, clierr.Usagef("--path is required: name the code path the child takes, e.g. --path worker")
	}
	switch f.output {
	case "", "json":
	default:
		return fork.Options{}, clierr.Usagef("--output %q: use json or leave it unset for text", f.output)
	}
	if f.timeout < 0 {
		return fork.Options{}, clierr.Usagef("--timeout %s is negative: use 0 for no limit", f.timeout)
	}
	if f.logLines < 0 {
		return fork.Options{}, clierr.Usagef("--log-lines %d is negative", f.logLines)
	}
	if f.delete && !f.wait {
		return fork.Options{}, clierr.Usagef("--delete needs --wait: the child can only be deleted once it has completed")
	}
	opts := fork.Options{
		ServiceAccountName: f.serviceAccount,
		Instance:           f.instance,
		Timeout:            f.timeout,
		Delete:             f.delete,
		LogLines:           f.logLines,
		KeepSidecars:       f.keepSidecars,
		DropContainers:     f.dropContainers,
	}
	env, err := keyValues("--env", f.env)
	if err != nil {
		return opts, err
	}
	for _, kv := range env {
		opts.Env = append(opts.Env, corev1.EnvVar{Name: kv[0], Value: kv[1]})
	}
	for _, in := range []struct {
		flag   string
		values []string
		into   *map[string]string
	}{{"--label", f.labels, &opts.Labels}, {"--annotation", f.annotations, &opts.Annotations}} {
		kvs, err := keyValues(in.flag, in.values)
		if err != nil {
			return opts, err
		}
		for _, kv := range kvs {
			if *in.into == nil {
				*in.into = map[string]string{}
			}
			(*in.into)[kv[0]] = kv[1]
		}
	}
	return opts, nil
}

func keyValues(flag string, values []string) ([][2]string, error) {
	out := make([][2]string, 0, len(values))
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, clierr.Usagef("%s %q: use KEY=VALUE", flag, v)
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}

// print writes res as JSON or as a few lines of text.
func (f *flags) print(w io.Writer, res *fork.Result) error {
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		return nil
	}
	verb := "created"
	if res.Adopted {
		verb = "adopted"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pod/%s %s (namespace %s): %s", res.Name, verb, res.Namespace, orPending(res.Phase))
	if res.Completed() {
		fmt.Fprintf(&b, ", exit code %d", res.ExitCode())
	}
	if res.Deleted {
		b.WriteString(", deleted")
	}
	b.WriteString("\n")
	for _, c := range res.Containers {
		if len(c.Logs) == 0 && c.LogError == "" {
			continue
		}
		fmt.Fprintf(&b, "--- %s (last %d log lines)\n", c.Name, len(c.Logs))
		for _, l := range c.Logs {
			b.WriteString(l + "\n")
		}
		if c.LogError != "" {
			fmt.Fprintf(&b, "(logs unavailable: %s)\n", c.LogError)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

func orPending(p corev1.PodPhase) corev1.PodPhase {
	if p == "" {
		return corev1.PodPending
	}
	return p
}
