package framework

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
)

// resourceNames are the names `get` and `describe` accept for Frameworks.
var resourceNames = []string{"fw", "framework", "frameworks", "frameworks.podkit.dev"}

type getFlags struct {
	output        string
	selector      string
	allNamespaces bool
	watch         bool
	watchOnly     bool
}

// NewGetCommand returns `podkit get fw [NAME]`.
func NewGetCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &getFlags{}
	cmd := &cobra.Command{
		Use:   "get fw [NAME]",
		Short: "List Frameworks with their state and ready tasks",
		Example: `  podkit get fw
  podkit get fw my-job -o wide
  podkit get fw -A -o yaml
  podkit get fw -l team=vision -o name
  podkit get fw my-job -o jsonpath='{.status.attemptStatus.completionStatus.code}'
  podkit get fw -w                       # the list, then a row per change until Ctrl-C`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: completeNames(c),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGet(cmd.Context(), c, f, args)
		},
	}
	cmd.SetContext(ctx)
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: wide, json, yaml, name, jsonpath=…, jsonpath-as-json=…, jsonpath-file=…, go-template=…, go-template-file=… (default: table)")
	cmd.Flags().StringVarP(&f.selector, "selector", "l", "", "label selector to filter on, as kubectl's (e.g. -l team=vision,tier!=batch)")
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list Frameworks of every namespace")
	cmd.Flags().BoolVarP(&f.watch, "watch", "w", false, "after listing, print each change (a row, or the object with -o) until interrupted; survives apiserver restarts")
	cmd.Flags().BoolVar(&f.watchOnly, "watch-only", false, "print changes only, without the initial list")
	return cmd
}

// NewDescribeCommand returns `podkit describe fw NAME`.
func NewDescribeCommand(ctx context.Context, c *common.Common) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "describe fw NAME",
		Short:             "Show a Framework's roles, tasks, pod IPs, attempts and events",
		Example:           `  podkit describe fw my-job -n team-a`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeNames(c),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDescribe(cmd.Context(), c, args)
		},
	}
	cmd.SetContext(ctx)
	return cmd
}

func checkResource(name string) error {
	for _, n := range resourceNames {
		if strings.EqualFold(name, n) {
			return nil
		}
	}
	return clierr.Usagef("unknown resource %q: podkit get/describe know Frameworks only (%s)", name, strings.Join(resourceNames, ", "))
}

func newClient(c *common.Common) (client.WithWatch, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	cl, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return cl, nil
}

func runGet(ctx context.Context, c *common.Common, f *getFlags, args []string) error {
	if err := checkResource(args[0]); err != nil {
		return err
	}
	var printer printers.ResourcePrinter
	if f.output != "" && f.output != "wide" {
		pf := genericclioptions.NewPrintFlags("")
		pf.OutputFormat = &f.output
		p, err := pf.ToPrinter()
		if genericclioptions.IsNoCompatiblePrinterError(err) {
			return clierr.Usagef("--output %q: use wide, %s", f.output, strings.Join(pf.AllowedFormats(), ", "))
		} else if err != nil {
			return clierr.Usagef("--output %q: %v", f.output, err)
		}
		printer = p
	}
	selector, err := labels.Parse(f.selector)
	if err != nil {
		return clierr.Usagef("--selector %q: %v", f.selector, err)
	}
	if len(args) == 2 && f.selector != "" {
		return clierr.Usagef("--selector cannot be used with a Framework name")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ns, err := c.Namespace()
	if err != nil {
		return err
	}
	var items []v1.Framework
	var listRV string
	if len(args) == 2 && (f.watch || f.watchOnly) {
		// Listed by name, so that the watch starts at the list's version.
		var list v1.FrameworkList
		if err := cl.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"metadata.name": args[1]}); err != nil {
			return fmt.Errorf("list frameworks: %w", err)
		}
		if len(list.Items) == 0 {
			return notFoundHint(apierrors.NewNotFound(v1.GroupVersion.WithResource("frameworks").GroupResource(), args[1]), ns, args[1])
		}
		items, listRV = list.Items, list.ResourceVersion
	} else if len(args) == 2 {
		fw := &v1.Framework{}
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: args[1]}, fw); err != nil {
			return notFoundHint(err, ns, args[1])
		}
		items = []v1.Framework{*fw}
	} else {
		var list v1.FrameworkList
		opts := []client.ListOption{}
		if !f.allNamespaces {
			opts = append(opts, client.InNamespace(ns))
		}
		if !selector.Empty() {
			opts = append(opts, client.MatchingLabelsSelector{Selector: selector})
		}
		if err := cl.List(ctx, &list, opts...); err != nil {
			return fmt.Errorf("list frameworks: %w", err)
		}
		items, listRV = list.Items, list.ResourceVersion
	}
	out := c.Streams.Out
	if f.watch || f.watchOnly {
		return watchFrameworks(ctx, c, f, cl, printer, args, ns, selector, listRV, items)
	}
	if printer != nil {
		for i := range items {
			items[i].SetGroupVersionKind(v1.FrameworkGroupVersionKind)
		}
		if len(args) == 2 || f.output == "name" {
			// One object, or names: the name printer takes objects, not
			// typed lists.
			for i := range items {
				if err := printer.PrintObj(&items[i], out); err != nil {
					return fmt.Errorf("print frameworks: %w", err)
				}
			}
			return nil
		}
		list := &v1.FrameworkList{Items: items}
		list.SetGroupVersionKind(v1.GroupVersion.WithKind("FrameworkList"))
		var obj runtime.Object = list
		if err := printer.PrintObj(obj, out); err != nil {
			return fmt.Errorf("print frameworks: %w", err)
		}
		return nil
	}
	if len(items) == 0 {
		fmt.Fprintf(c.Streams.ErrOut, "No frameworks found in namespace %s.\n", ns)
		return nil
	}
	return printTable(out, items, f.output == "wide", f.allNamespaces, true, time.Now())
}

// completeNames completes Framework names of the current namespace after
// the resource argument (shell completion: podkit completion bash|zsh|fish).
func completeNames(c *common.Common) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return resourceNames, cobra.ShellCompDirectiveNoFileComp
		}
		if len(args) > 1 || checkResource(args[0]) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cl, err := newClient(c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		ns, err := c.Namespace()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var list v1.FrameworkList
		if err := cl.List(cmd.Context(), &list, client.InNamespace(ns)); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []string
		for _, fw := range list.Items {
			if strings.HasPrefix(fw.Name, toComplete) {
				names = append(names, fw.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func printTable(out io.Writer, items []v1.Framework, wide, withNamespace, header bool, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	cols := []string{"NAME", "STATE", "READY", "ATTEMPT", "AGE"}
	if wide {
		cols = append(cols, "RETRIED", "CODE", "PHRASE")
	}
	if withNamespace {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	if header {
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	for _, fw := range items {
		state, ready, attempt, retried, code, phrase := "Pending", "0/"+fmt.Sprint(fw.Spec.TotalTasks()), "-", "0", "-", "-"
		if st := fw.Status; st != nil {
			state, ready, attempt = string(st.State), st.ReadyTasks, fmt.Sprint(st.AttemptStatus.ID)
			retried = fmt.Sprint(st.RetryPolicyStatus.TotalRetriedCount)
			if cs := st.AttemptStatus.CompletionStatus; cs != nil {
				code, phrase = fmt.Sprint(cs.Code), string(cs.Phrase)
			}
		}
		row := []string{fw.Name, state, ready, attempt, age(fw.CreationTimestamp, now)}
		if wide {
			row = append(row, retried, code, phrase)
		}
		if withNamespace {
			row = append([]string{fw.Namespace}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func runDescribe(ctx context.Context, c *common.Common, args []string) error {
	if err := checkResource(args[0]); err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ns, err := c.Namespace()
	if err != nil {
		return err
	}
	fw := &v1.Framework{}
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: args[1]}, fw); err != nil {
		return notFoundHint(err, ns, args[1])
	}
	var events corev1.EventList
	// The server filters (kubectl describe does the same): a namespace's
	// events can be many thousands.
	if err := cl.List(ctx, &events, client.InNamespace(ns), client.MatchingFields{"involvedObject.uid": string(fw.UID)}); err != nil {
		// Events are a nicety: say so and describe the rest.
		fmt.Fprintf(c.Streams.ErrOut, "warning: list events: %v\n", err)
	}
	var mine []corev1.Event
	for _, e := range events.Items {
		if e.InvolvedObject.UID == fw.UID {
			mine = append(mine, e)
		}
	}
	waiting, more, err := unplacedTasks(ctx, cl, fw)
	if err != nil {
		// As events: say so and describe the rest.
		fmt.Fprintf(c.Streams.ErrOut, "warning: %v\n", err)
	}
	return describe(c.Streams.Out, fw, mine, waiting, more, time.Now())
}

func describe(out io.Writer, fw *v1.Framework, events []corev1.Event, waiting []unplaced, moreWaiting int, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("Name:\t%s", fw.Name)
	p("Namespace:\t%s", fw.Namespace)
	p("Created:\t%s (%s ago)", fw.CreationTimestamp.UTC().Format(time.RFC3339), age(fw.CreationTimestamp, now))
	p("Execution Type:\t%s", fw.Spec.ExecutionType)
	p("Retry Policy:\tfancy=%v maxRetryCount=%d", fw.Spec.RetryPolicy.FancyRetryPolicy, fw.Spec.RetryPolicy.MaxRetryCount)
	p("Suspend:\t%v", fw.Spec.Suspend)
	if fw.Spec.ManagedBy != "" && fw.Spec.ManagedBy != v1.ManagedByPodkit {
		p("Managed By:\t%s (podkit's controller leaves it alone)", fw.Spec.ManagedBy)
	}
	st := fw.Status
	if st == nil {
		p("State:\t<not yet seen by the controller>")
	} else {
		p("State:\t%s (since %s)", st.State, st.TransitionTime.UTC().Format(time.RFC3339))
		p("Ready:\t%s", st.ReadyTasks)
		p("Retries:\ttotal=%d accountable=%d", st.RetryPolicyStatus.TotalRetriedCount, st.RetryPolicyStatus.AccountableRetriedCount)
		att := st.AttemptStatus
		p("Attempt:\t%d (ConfigMap %s, instance %s)", att.ID, att.ConfigMapName, deref(att.InstanceUID))
		if cs := att.CompletionStatus; cs != nil {
			p("Completion:\tcode %d %s (%s) %s", cs.Code, cs.Phrase, cs.Type.Name, strings.TrimSpace(cs.Diagnostics))
			if cs.Trigger != nil {
				p("Triggered By:\t%s", cs.Trigger.Message)
			}
		}
		var conds []string
		for _, c := range st.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s (%s)", c.Type, c.Status, c.Reason))
		}
		if len(conds) > 0 {
			p("Conditions:\t%s", strings.Join(conds, ", "))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write description: %w", err)
	}
	for _, role := range fw.Spec.TaskRoles {
		pol := role.FrameworkAttemptCompletionPolicy
		fmt.Fprintf(out, "\nTask Role %s: %d task(s), minFailedTaskCount=%d minSucceededTaskCount=%d, task maxRetryCount=%d\n",
			role.Name, role.TaskNumber, pol.MinFailedTaskCount, pol.MinSucceededTaskCount, role.Task.RetryPolicy.MaxRetryCount)
		if st == nil {
			continue
		}
		rs := st.AttemptStatus.TaskRoleStatus(role.Name)
		if rs == nil {
			continue
		}
		tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  INDEX\tSTATE\tATTEMPT\tRETRIED\tPOD\tPOD IP\tNODE\tCODE")
		for _, ts := range rs.TaskStatuses {
			as := ts.AttemptStatus
			code := "-"
			if as.CompletionStatus != nil {
				code = fmt.Sprintf("%d %s", as.CompletionStatus.Code, as.CompletionStatus.Phrase)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", ts.Index, ts.State, as.ID, ts.RetryPolicyStatus.TotalRetriedCount,
				as.PodName, derefStr(as.PodIP), derefStr(as.PodNodeName), code)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write tasks: %w", err)
		}
	}
	if len(waiting) > 0 {
		// Why tasks wait: the scheduler's word, as kubectl describe pod
		// shows it, without describing every pod.
		fmt.Fprintln(out, "\nUnscheduled Pods:")
		tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  POD\tAGE\tLATEST FailedScheduling")
		for _, u := range waiting {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", u.pod, age(metav1.NewTime(u.since), now), u.message)
		}
		if moreWaiting > 0 {
			fmt.Fprintf(tw, "  … and %d more unscheduled pod(s)\n", moreWaiting)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write unscheduled pods: %w", err)
		}
	}
	fmt.Fprintln(out, "\nEvents:")
	if len(events) == 0 {
		fmt.Fprintln(out, "  <none>")
		return nil
	}
	sort.Slice(events, func(i, j int) bool { return eventTime(events[i]).Before(eventTime(events[j])) })
	tw = tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tREASON\tAGE\tMESSAGE")
	for _, e := range events {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Type, e.Reason, age(metav1.NewTime(eventTime(e)), now), e.Message)
	}
	return tw.Flush()
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		// events.k8s.io/v1 events (the scheduler's) that recur keep their
		// first eventTime and count the repeats in series.
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func deref(u *types.UID) string {
	if u == nil {
		return "-"
	}
	return string(*u)
}

func derefStr(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func notFoundHint(err error, ns, name string) error {
	if apierrors.IsNotFound(err) {
		return clierr.WithCode(clierr.CodeFailure, fmt.Errorf("framework %q not found in namespace %s (list them with: podkit get fw -A)", name, ns))
	}
	return fmt.Errorf("get framework %s/%s: %w", ns, name, err)
}
