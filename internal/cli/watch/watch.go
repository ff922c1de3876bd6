package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/pkg/podoperator"
)

// flags are the options of `podkit watch pods`.
type flags struct {
	allNamespaces bool
	selector      string
	fieldSelector string
	output        string
	pendingLimit  time.Duration
	pendingAction string
}

// NewCommand returns `podkit watch` with its `pods` subcommand.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Watch resources and print one line per event",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPodsCommand(ctx, c))
	return cmd
}

func newPodsCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "pods",
		Short: "Print every add, update and delete of pods until interrupted",
		Long: `Print every add, update and delete of pods until interrupted.

Pods that exist when the command starts are printed as add events first.
Events of one pod are printed in order; use -o json for one JSON object per line.

With --pending-limit, pods Pending for longer than the limit (since their
creation) are also reported, once each, as "pending-too-long" events with the
scheduler's reason; --pending-action delete deletes them as well.`,
		Example: `  # All pods in the current namespace
  podkit watch pods

  # Pods labelled app=web in every namespace, as JSON lines
  podkit watch pods -A -l app=web -o json

  # Running pods on one node
  podkit watch pods -A --field-selector spec.nodeName=node-1,status.phase=Running

  # Also report pods that stay Pending for more than 5 minutes
  podkit watch pods -A --pending-limit 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runE(ctx, c, f)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "Watch pods in every namespace (overrides -n)")
	fs.StringVarP(&f.selector, "selector", "l", "", "Label selector, e.g. -l app=web,tier!=cache")
	fs.StringVar(&f.fieldSelector, "field-selector", "", "Field selector, e.g. --field-selector status.phase=Running")
	fs.StringVarP(&f.output, "output", "o", "text", "Output format: text or json (one object per line)")
	fs.DurationVar(&f.pendingLimit, "pending-limit", 0, "Report pods Pending for longer than this, e.g. 5m (0: off)")
	fs.StringVar(&f.pendingAction, "pending-action", "report", "What to do with pods over --pending-limit: report, or delete (and report)")
	return cmd
}

func runE(ctx context.Context, c *common.Common, f *flags) error {
	if _, err := labels.Parse(f.selector); err != nil {
		return clierr.Usagef("--selector %q: %v", f.selector, err)
	}
	if _, err := fields.ParseSelector(f.fieldSelector); err != nil {
		return clierr.Usagef("--field-selector %q: %v", f.fieldSelector, err)
	}
	if f.pendingLimit < 0 {
		return clierr.Usagef("--pending-limit %s is negative: use a duration such as 5m, or 0 to turn it off", f.pendingLimit)
	}
	var action podoperator.PendingAction
	switch f.pendingAction {
	case "report":
		action = podoperator.PendingActionCallback
	case "delete":
		action = podoperator.PendingActionDelete
	default:
		return clierr.Usagef("--pending-action %q: use report or delete", f.pendingAction)
	}
	if f.pendingAction != "report" && f.pendingLimit == 0 {
		return clierr.Usagef("--pending-action %s needs --pending-limit, e.g. --pending-limit 5m", f.pendingAction)
	}
	var print printFunc
	switch f.output {
	case "text":
		print = printText
	case "json":
		print = printJSON
	default:
		return clierr.Usagef("--output %q: use text or json", f.output)
	}
	namespace := ""
	if !f.allNamespaces {
		ns, err := c.Namespace()
		if err != nil {
			return err
		}
		namespace = ns
	}
	client, err := c.Clientset()
	if err != nil {
		return err
	}
	p := &printer{out: c.Streams.Out, print: print}
	var pending *podoperator.PendingWatch
	if f.pendingLimit > 0 {
		pending = &podoperator.PendingWatch{Limit: f.pendingLimit, Action: action, Callback: p.pendingCallback(action)}
	}
	op, err := podoperator.New(client, podoperator.Options{
		PendingWatch:  pending,
		Name:          "podkit-watch",
		Namespace:     namespace,
		LabelSelector: f.selector,
		FieldSelector: f.fieldSelector,
		// One worker: lines come out in the order the watch delivered them.
		Workers: 1,
		Logger:  c.Logger,
		Handler: p.handler(),
	})
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	if err := op.Run(ctx); err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	return nil
}

// printFunc writes one event line; pending is set for pending-too-long events.
type printFunc func(w io.Writer, typ string, pod *corev1.Pod, pending *pendingInfo) error

// pendingInfo describes a pending-too-long event.
type pendingInfo struct {
	For    time.Duration
	Reason string
	Action string
}

// pendingEvent is the event type printed for pods over --pending-limit.
const pendingEvent = "pending-too-long"

func (p *printer) pendingCallback(action podoperator.PendingAction) func(context.Context, *corev1.Pod, time.Duration) error {
	done := "reported"
	if action == podoperator.PendingActionDelete {
		done = "deleted"
	}
	return func(_ context.Context, pod *corev1.Pod, age time.Duration) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		info := &pendingInfo{For: age, Reason: podoperator.PendingReason(pod), Action: done}
		if err := p.print(p.out, pendingEvent, pod, info); err != nil {
			return fmt.Errorf("print pending-too-long event of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	}
}

// printer serialises lines from the operator's workers.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	print printFunc
}

func (p *printer) handler() podoperator.Handler {
	line := func(typ string, pod *corev1.Pod) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if err := p.print(p.out, typ, pod, nil); err != nil {
			return fmt.Errorf("print %s event of pod %s/%s: %w", typ, pod.Namespace, pod.Name, err)
		}
		return nil
	}
	return podoperator.HandlerFuncs{
		AddFunc:    func(_ context.Context, pod *corev1.Pod) error { return line("add", pod) },
		UpdateFunc: func(_ context.Context, _, pod *corev1.Pod) error { return line("update", pod) },
		DeleteFunc: func(_ context.Context, pod *corev1.Pod) error { return line("delete", pod) },
	}
}

// printText writes the seed demo's line:
// "Pod add event  name=web  namespace=default  resourceVersion=42  phase=Pending".
// A pending-too-long event adds "pendingFor=5m0s  action=reported  reason=Unschedulable: …".
func printText(w io.Writer, typ string, pod *corev1.Pod, pending *pendingInfo) error {
	extra := ""
	if pending != nil {
		extra = fmt.Sprintf("  pendingFor=%s  action=%s  reason=%s", pending.For, pending.Action, strconv.Quote(pending.Reason))
	}
	_, err := fmt.Fprintf(w, "Pod %s event  name=%s  namespace=%s  resourceVersion=%s  phase=%s%s\n",
		typ, pod.Name, pod.Namespace, pod.ResourceVersion, pod.Status.Phase, extra)
	return err
}

// eventLine is one JSON line of `podkit watch pods -o json`.
type eventLine struct {
	Type            string `json:"type"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	UID             string `json:"uid"`
	ResourceVersion string `json:"resourceVersion"`
	Phase           string `json:"phase,omitempty"`
	NodeName        string `json:"nodeName,omitempty"`
	// Set for pending-too-long events only.
	PendingSeconds float64 `json:"pendingSeconds,omitempty"`
	Reason         string  `json:"reason,omitempty"`
	Action         string  `json:"action,omitempty"`
}

func printJSON(w io.Writer, typ string, pod *corev1.Pod, pending *pendingInfo) error {
	line := eventLine{
		Type:            typ,
		Namespace:       pod.Namespace,
		Name:            pod.Name,
		UID:             string(pod.UID),
		ResourceVersion: pod.ResourceVersion,
		Phase:           string(pod.Status.Phase),
		NodeName:        pod.Spec.NodeName,
	}
	if pending != nil {
		line.PendingSeconds, line.Reason, line.Action = pending.For.Seconds(), pending.Reason, pending.Action
	}
	return json.NewEncoder(w).Encode(line)
}
