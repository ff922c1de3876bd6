package framework

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/cli/common"
)

// watchFrameworks implements get -w and --watch-only, as kubectl get -w
// does: the listed Frameworks (unless --watch-only), then one row (or one
// object with -o) per added, modified or deleted Framework, until ctx ends.
// It resumes from the last version it printed when the watch breaks (an
// apiserver restart), where kubectl would exit.
func watchFrameworks(ctx context.Context, c *common.Common, f *getFlags, wc client.WithWatch, printer printers.ResourcePrinter,
	args []string, ns string, selector labels.Selector, listRV string, items []v1.Framework) error {
	out := c.Streams.Out
	print := func(fws []v1.Framework, header bool) error {
		if printer == nil {
			return printTable(out, fws, f.output == "wide", f.allNamespaces, header, time.Now())
		}
		for i := range fws {
			fws[i].SetGroupVersionKind(v1.FrameworkGroupVersionKind)
			if err := printer.PrintObj(&fws[i], out); err != nil {
				return fmt.Errorf("print frameworks: %w", err)
			}
		}
		return nil
	}
	header := true
	if !f.watchOnly && len(items) > 0 {
		if err := print(items, true); err != nil {
			return err
		}
		header = false
	} else if !f.watchOnly {
		fmt.Fprintf(c.Streams.ErrOut, "No frameworks found in namespace %s; watching for changes.\n", ns)
	}
	var fieldSel fields.Selector
	if len(args) == 2 {
		fieldSel = fields.OneTermEqualSelector("metadata.name", args[1])
	}
	listOpts := func(raw *metav1.ListOptions) *client.ListOptions {
		lo := &client.ListOptions{Raw: raw, LabelSelector: selector, FieldSelector: fieldSel}
		if !f.allNamespaces {
			lo.Namespace = ns
		}
		return lo
	}
	// printed is the resourceVersion last printed per Framework, so that a
	// relist after an expired watch prints only what changed meanwhile.
	printed := map[string]string{}
	for _, fw := range items {
		printed[fw.Namespace+"/"+fw.Name] = fw.ResourceVersion
	}
	for {
		expired, err := watchFrom(ctx, wc, listOpts, listRV, func(fw *v1.Framework) error {
			printed[fw.Namespace+"/"+fw.Name] = fw.ResourceVersion
			err := print([]v1.Framework{*fw}, header)
			header = false
			return err
		})
		if err != nil || !expired || ctx.Err() != nil {
			return err
		}
		// The version to resume from is gone (an apiserver restart empties
		// its watch cache): list again and print what changed.
		var list v1.FrameworkList
		if err := wc.List(ctx, &list, listOpts(&metav1.ListOptions{})); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("list frameworks after the watch expired: %w", err)
		}
		for i := range list.Items {
			fw := &list.Items[i]
			if printed[fw.Namespace+"/"+fw.Name] == fw.ResourceVersion {
				continue
			}
			printed[fw.Namespace+"/"+fw.Name] = fw.ResourceVersion
			if err := print([]v1.Framework{*fw}, header); err != nil {
				return err
			}
			header = false
		}
		listRV = list.ResourceVersion
	}
}

// watchFrom watches from resourceVersion rv, retrying broken watches,
// and calls fn for each added, modified or deleted Framework. It returns
// expired=true when rv (or a later one) is too old to resume from, and nil
// when ctx ends.
func watchFrom(ctx context.Context, wc client.WithWatch, listOpts func(*metav1.ListOptions) *client.ListOptions, rv string, fn func(*v1.Framework) error) (expired bool, err error) {
	lw := &cache.ListWatch{WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
		return wc.Watch(ctx, &v1.FrameworkList{}, listOpts(&opts))
	}}
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, lw)
	if err != nil {
		return false, fmt.Errorf("watch frameworks: %w", err)
	}
	defer rw.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case ev, ok := <-rw.ResultChan():
			if !ok {
				if ctx.Err() != nil {
					return false, nil
				}
				return true, nil
			}
			if ev.Type == watch.Error {
				if err := apierrors.FromObject(ev.Object); apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return true, nil
				} else {
					return false, fmt.Errorf("watch frameworks: %w", err)
				}
			}
			fw, ok := ev.Object.(*v1.Framework)
			if !ok || ev.Type == watch.Bookmark {
				continue
			}
			if err := fn(fw); err != nil {
				return false, err
			}
		}
	}
}
